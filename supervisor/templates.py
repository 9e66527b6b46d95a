"""Templates and their sub-resources: every input checked here, then stored.

The store checks shapes (types, uniqueness); this module checks meaning: settings against
the ceilings, startup paths against the worktree rules, modules against the catalog,
libraries against the package store and the library directory.
"""

from __future__ import annotations

import builtins  # the method `list` shadows the builtin in the class body's annotations
from dataclasses import replace
from typing import Any

import store as store_mod
from store import Store
from supervisor.catalog import check_module
from supervisor.errors import CapabilityInvalid, EngineUnsupported, StartupModeUnsupported, ValidationError
from supervisor.ids import check_uuid
from supervisor.libraries import LibrarySources, check_library_name
from supervisor.modules.capabilities import check_config, redacted
from supervisor.settings import Ceilings, validate_patch
from supervisor.unicode_text import holds_lone_surrogate, shown
from supervisor.worktree import check_relative

ENGINES = frozenset({"quickjs"})
# `eval`: the file runs as run-file would run it; `import`: as an ES module, whatever its name.
STARTUP_MODES = frozenset({"eval", "import"})


class Templates:
    def __init__(self, store: Store, ceilings: Ceilings, libraries: LibrarySources) -> None:
        self._store = store
        self._ceilings = ceilings
        self._libraries = libraries

    def create(self, name: Any, engine: Any = "quickjs") -> store_mod.Template:
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise ValidationError("name must be a non-empty string of at most 200 characters", field="name")
        if engine is None:
            engine = "quickjs"
        if engine not in ENGINES:
            raise EngineUnsupported(f"engine must be one of {sorted(ENGINES)}", field="engine",
                                    engine=engine if isinstance(engine, str) else None)
        return self._store.create_template(name.strip(), engine=engine)

    def list(self) -> list[store_mod.Template]:
        return self._store.list_templates()

    def delete(self, template_id: str) -> None:
        self._store.delete_template(check_uuid(template_id, "template_id"))

    def settings(self, template_id: str) -> store_mod.TemplateSettings:
        return self._store.get_settings(check_uuid(template_id, "template_id"))

    def patch_settings(self, template_id: str, patch: Any) -> store_mod.TemplateSettings:
        template_id = check_uuid(template_id, "template_id")
        sections = validate_patch(patch, self._ceilings)
        self._store.get_template(template_id)  # an unknown template is 404 even for an empty patch
        return self._store.update_settings(template_id, **sections)

    def get(self, template_id: str) -> store_mod.TemplateDetail:
        detail = self._store.get_template_detail(check_uuid(template_id, "template_id"))
        return replace(detail, capabilities=[_shown(c) for c in detail.capabilities])

    def add_capability(self, template_id: str, kind: Any, name: Any, enabled: Any = True,
                       config: Any = None) -> store_mod.Capability:
        """A capability of one of the modules' kinds, its config checked and completed with
        the defaults (INVALID_CAPABILITY, naming the field, otherwise). A template has at most
        one enabled capability of each kind: it is the one that scopes the module."""
        template_id = check_uuid(template_id, "template_id")
        for value, field in ((kind, "kind"), (name, "name")):
            if not isinstance(value, str) or not value.strip():
                raise ValidationError(f"{field} must be a non-empty string", field=field)
            if holds_lone_surrogate(value):
                raise ValidationError(f"{field} must be Unicode text (it holds a lone surrogate)",
                                      field=field, value=shown(value))
        if not isinstance(enabled, bool):
            raise ValidationError("enabled must be a boolean", field="enabled")
        if config is not None and not isinstance(config, dict):
            raise ValidationError("config must be an object", field="config")
        checked = check_config(kind, config)
        if enabled and any(c.enabled and c.kind == kind
                           for c in self._store.list_capabilities(template_id)):
            raise CapabilityInvalid(f"the template already has an enabled {kind} capability: "
                                    "remove it first", field="kind", kind=kind)
        return _shown(self._store.add_capability(template_id, kind, name, enabled=enabled,
                                                 config=checked))

    def list_capabilities(self, template_id: str) -> builtins.list[store_mod.Capability]:
        return [_shown(c) for c in self._store.list_capabilities(check_uuid(template_id, "template_id"))]

    def delete_capability(self, template_id: str, capability_id: str) -> bool:
        return self._store.delete_capability(check_uuid(template_id, "template_id"),
                                             check_uuid(capability_id, "capability_id"))

    def add_startup_file(self, template_id: str, path: Any, order_index: Any = 0,
                         mode: Any = "eval") -> store_mod.StartupFile:
        template_id = check_uuid(template_id, "template_id")
        if mode is None:
            mode = "eval"
        if not isinstance(mode, str):
            raise ValidationError("mode must be a string", field="mode")
        if mode not in STARTUP_MODES:
            raise StartupModeUnsupported(f"startup mode {mode!r} is not supported; use 'eval' "
                                         "or 'import'", mode=mode)
        if order_index is None:
            order_index = 0
        if isinstance(order_index, bool) or not isinstance(order_index, int):
            raise ValidationError("order_index must be an integer", field="order_index")
        relative = check_relative(path)
        return self._store.add_startup_file(template_id, relative, order_index=order_index, mode=mode)

    def list_startup_files(self, template_id: str) -> builtins.list[store_mod.StartupFile]:
        return self._store.list_startup_files(check_uuid(template_id, "template_id"))

    def delete_startup_file(self, template_id: str, startup_file_id: str) -> bool:
        return self._store.delete_startup_file(check_uuid(template_id, "template_id"),
                                               check_uuid(startup_file_id, "startup_file_id"))

    def add_module(self, template_id: str, name: Any) -> store_mod.TemplateModule:
        template_id = check_uuid(template_id, "template_id")
        return self._store.add_module(template_id, check_module(name))

    def list_modules(self, template_id: str) -> builtins.list[store_mod.TemplateModule]:
        return self._store.list_modules(check_uuid(template_id, "template_id"))

    def remove_module(self, template_id: str, name: str) -> bool:
        return self._store.remove_module(check_uuid(template_id, "template_id"), name)

    def add_library(self, template_id: str, name: Any) -> store_mod.TemplateLibrary:
        template_id = check_uuid(template_id, "template_id")
        # It must be there now, with every package it needs.
        self._libraries.resolve([check_library_name(name)])
        return self._store.add_library(template_id, name)

    def list_libraries(self, template_id: str) -> builtins.list[store_mod.TemplateLibrary]:
        return self._store.list_libraries(check_uuid(template_id, "template_id"))

    def remove_library(self, template_id: str, name: str) -> bool:
        return self._store.remove_library(check_uuid(template_id, "template_id"), name)


def _shown(capability: store_mod.Capability) -> store_mod.Capability:
    """A capability as clients see it: secrets in its config hidden."""
    return replace(capability, config=redacted(capability.kind, capability.config))
