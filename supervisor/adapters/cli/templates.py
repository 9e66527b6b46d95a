"""`vm-system template ...`: templates and what hangs off them, through the daemon."""

from __future__ import annotations

import argparse
import json
from typing import Any

from supervisor.adapters.cli import exit_codes
from supervisor.adapters.cli.common import UsageError, command, group, json_object, resolve_template
from supervisor.adapters.cli.output import Output, scalar, when

SECTIONS = ("limits", "runtime", "resolver")

SETTINGS_EPILOG = """\
Without options, prints the settings. With options, changes them (a partial update: keys not
given keep their value) and prints the result:
  --limits '{"cpu_ms": 500, "wall_ms": 2000}'   merge a JSON object into a section
  --set limits.cpu_ms=500                        one key; the value is JSON, or else a string
  --set resolver.roots='["src", "lib"]'          (repeat --set for several keys)
--set wins over the same key given in --limits/--runtime/--resolver. A JSON value may also be
read from a file with @FILE, or from stdin with -.
Limits: cpu_ms, wall_ms, mem_mb, max_events, max_output_kb, max_host_calls, max_host_in_kb,
max_host_out_kb (0 = the daemon's ceiling).
Runtime: esm, strict, console. Resolver: roots, extensions, allow_absolute_repo_imports."""


def add_parser(subparsers: Any) -> None:
    sub = group(subparsers, "template", help="manage templates (through the daemon)",
                description="Templates: the settings, startup files, modules, libraries and "
                            "capabilities sessions are made from. TEMPLATE is a template's id "
                            "or its name.")

    p = command(sub, "create", _create, help="create a template (with default settings)")
    p.add_argument("name", nargs="?", metavar="NAME", help="the template's name (unique)")
    p.add_argument("--name", dest="name_flag", metavar="NAME", help=argparse.SUPPRESS)
    p.add_argument("--engine", metavar="ENGINE", help="the engine (default and only: quickjs)")

    command(sub, "list", _list, help="list templates")

    p = command(sub, "get", _get, help="show a template with its settings and sub-resources")
    p.add_argument("template", metavar="TEMPLATE")

    p = command(sub, "delete", _delete, help="delete a template (live sessions made from it stay)")
    p.add_argument("template", metavar="TEMPLATE")

    p = command(sub, "settings", _settings, help="show or change a template's settings",
                epilog=SETTINGS_EPILOG)
    p.add_argument("template", metavar="TEMPLATE")
    for section in SECTIONS:
        p.add_argument(f"--{section}", metavar="JSON",
                       help=f"merge this JSON object into {section}")
    p.add_argument("--set", dest="assignments", action="append", default=[],
                   metavar="SECTION.KEY=VALUE", help="change one key (repeatable)")

    p = command(sub, "add-startup", _add_startup,
                help="add a startup file, run when a session starts")
    p.add_argument("template", metavar="TEMPLATE")
    p.add_argument("path", nargs="?", metavar="PATH",
                   help="a path relative to the session's worktree")
    p.add_argument("--path", dest="path_flag", metavar="PATH", help=argparse.SUPPRESS)
    p.add_argument("--order", dest="order_index", type=int, metavar="N",
                   help="run order, lowest first (default 0)")
    p.add_argument("--mode", metavar="MODE", help="startup mode: eval (the default) or import (run as an ES module)")

    p = command(sub, "list-startup", _list_startup, help="list a template's startup files")
    p.add_argument("template", metavar="TEMPLATE")

    p = command(sub, "remove-startup", _remove_startup, help="remove a startup file")
    p.add_argument("template", metavar="TEMPLATE")
    p.add_argument("startup_file_id", metavar="STARTUP_FILE_ID")

    names = {"module": "fs, database, exec or fetch",
             "library": "a package of the daemon's store (lodash@4.17.21, the Go form lodash-4.17.21, "
                        "@scope/name@1.0.0, or lodash: its highest stored version; `vm-system libs add` "
                        "stores one), or else a file NAME.js of `serve --library-dir`"}
    for kind in ("module", "library"):
        plural = "modules" if kind == "module" else "libraries"
        p = command(sub, f"add-{kind}", _adder(kind), help=f"add a {kind} to a template")
        p.add_argument("template", metavar="TEMPLATE")
        p.add_argument("name", metavar="NAME", help=names[kind])
        p = command(sub, f"remove-{kind}", _remover(kind), help=f"remove a {kind} from a template")
        p.add_argument("template", metavar="TEMPLATE")
        p.add_argument("name", metavar="NAME")
        p = command(sub, f"list-{plural}", _lister(kind), help=f"list a template's {plural}")
        p.add_argument("template", metavar="TEMPLATE")

    p = command(sub, "add-capability", _add_capability, help="add a capability to a template")
    p.add_argument("template", metavar="TEMPLATE")
    p.add_argument("--kind", required=True, metavar="KIND",
                   help="the module it scopes: fs, database, exec or fetch")
    p.add_argument("--name", metavar="NAME", help="capability name (default: the kind)")
    p.add_argument("--config", metavar="JSON",
                   help="capability config, a JSON object (default {}: the module's defaults; "
                        "docs/api.md, \"Modules\", lists each field)")
    p.add_argument("--disabled", action="store_true", help="add it disabled")

    p = command(sub, "list-capabilities", _list_capabilities, help="list a template's capabilities")
    p.add_argument("template", metavar="TEMPLATE")

    p = command(sub, "remove-capability", _remove_capability, help="remove a capability")
    p.add_argument("template", metavar="TEMPLATE")
    p.add_argument("capability_id", metavar="CAPABILITY_ID")


# ----- printing ----------------------------------------------------------------------------


def _print_template(out: Output, t: dict[str, Any]) -> None:
    out.fields([("id", t.get("id")), ("name", t.get("name")), ("engine", t.get("engine")),
                ("created", when(t.get("created_at"))), ("updated", when(t.get("updated_at")))])


def _settings_rows(settings: dict[str, Any]) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for section in SECTIONS:
        for key, value in (settings.get(section) or {}).items():
            rows.append((f"{section}.{key}", scalar(value)))
    return rows


def _startup_table(out: Output, files: list[dict[str, Any]]) -> None:
    out.table(["ORDER", "MODE", "PATH", "ID"],
              [[f.get("order_index"), f.get("mode"), f.get("path"), f.get("id")] for f in files],
              empty="no startup files")


def _capability_table(out: Output, caps: list[dict[str, Any]]) -> None:
    out.table(["KIND", "NAME", "ENABLED", "CONFIG", "ID"],
              [[c.get("kind"), c.get("name"), "yes" if c.get("enabled") else "no",
                json.dumps(c.get("config") or {}), c.get("id")] for c in caps],
              empty="no capabilities")


def _names_table(out: Output, items: list[dict[str, Any]], what: str) -> None:
    out.table(["NAME", "ADDED"], [[i.get("name"), when(i.get("created_at"))] for i in items],
              empty=f"no {what}")


# ----- handlers ----------------------------------------------------------------------------


def _create(api: Any, args: argparse.Namespace, out: Output) -> int:
    if args.name is not None and args.name_flag is not None:
        raise UsageError("give the name once (NAME or --name)")
    name = args.name if args.name is not None else args.name_flag
    if name is None:
        raise UsageError("template create: a NAME is required")
    template = api.create_template(name, engine=args.engine)
    if out.as_json:
        out.json(template)
    else:
        out.line(f"created template {template.get('name')}", "green")
        _print_template(out, template)
    return exit_codes.OK


def _list(api: Any, args: argparse.Namespace, out: Output) -> int:
    templates = api.list_templates()
    rows = [[t.get("id"), t.get("name"), t.get("engine"), when(t.get("created_at"))]
            for t in templates]
    return out.result(templates, lambda: out.table(["ID", "NAME", "ENGINE", "CREATED"], rows,
                                                   empty="no templates"))


def _get(api: Any, args: argparse.Namespace, out: Output) -> int:
    detail = api.get_template(resolve_template(api, args.template))
    if out.as_json:
        out.json(detail)
        return exit_codes.OK
    _print_template(out, detail.get("template") or {})
    sections: list[tuple[str, Any]] = [
        ("settings", lambda: out.fields(_settings_rows(detail.get("settings") or {}), indent=0)),
        ("startup files", lambda: _startup_table(out, detail.get("startup_files") or [])),
        ("modules", lambda: _names_table(out, detail.get("modules") or [], "modules")),
        ("libraries", lambda: _names_table(out, detail.get("libraries") or [], "libraries")),
        ("capabilities", lambda: _capability_table(out, detail.get("capabilities") or [])),
    ]
    for title, show in sections:
        out.line()
        out.line(title, "bold")
        show()
    return exit_codes.OK


def _delete(api: Any, args: argparse.Namespace, out: Output) -> int:
    result = api.delete_template(resolve_template(api, args.template))
    return out.result(result, lambda: out.line(
        f"deleted template {result.get('id', args.template)}"))


def _parse_assignment(text: str) -> tuple[str, str, Any]:
    target, sep, raw = text.partition("=")
    section, dot, key = target.strip().partition(".")
    if not sep or not dot or not key or "." in key:
        raise UsageError(f"--set {text!r}: expected SECTION.KEY=VALUE, like limits.cpu_ms=500")
    if section not in SECTIONS:
        raise UsageError(f"--set {text!r}: the section must be one of {', '.join(SECTIONS)}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw  # a bare word is a string: --set resolver.roots=... needs JSON, a name not
    return section, key, value


def settings_patch(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The PATCH body the options ask for ({} when none was given)."""
    patch: dict[str, dict[str, Any]] = {}
    for section in SECTIONS:
        text = getattr(args, section)
        if text is not None:
            patch[section] = json_object(text, f"--{section}")
    for assignment in args.assignments:
        section, key, value = _parse_assignment(assignment)
        patch.setdefault(section, {})[key] = value
    return patch


def _settings(api: Any, args: argparse.Namespace, out: Output) -> int:
    patch = settings_patch(args)
    template_id = resolve_template(api, args.template)
    settings = api.patch_settings(template_id, **patch) if patch else api.get_settings(template_id)
    if out.as_json:
        out.json(settings)
    else:
        if patch:
            out.line("settings updated", "green")
        out.fields(_settings_rows(settings))
    return exit_codes.OK


def _add_startup(api: Any, args: argparse.Namespace, out: Output) -> int:
    if args.path is not None and args.path_flag is not None:
        raise UsageError("give the path once (PATH or --path)")
    path = args.path if args.path is not None else args.path_flag
    if not path:
        raise UsageError("template add-startup: a PATH is required")
    startup = api.add_startup_file(resolve_template(api, args.template), path,
                                   order_index=args.order_index, mode=args.mode)
    return out.result(startup, lambda: out.line(
        f"added startup file {startup.get('path')} (order {startup.get('order_index')}, "
        f"mode {startup.get('mode')}, id {startup.get('id')})"))


def _list_startup(api: Any, args: argparse.Namespace, out: Output) -> int:
    files = api.list_startup_files(resolve_template(api, args.template))
    return out.result(files, lambda: _startup_table(out, files))


def _remove_startup(api: Any, args: argparse.Namespace, out: Output) -> int:
    result = api.delete_startup_file(resolve_template(api, args.template), args.startup_file_id)
    return out.result(result, lambda: out.line(f"removed startup file {args.startup_file_id}"))


def _adder(kind: str) -> Any:
    def handler(api: Any, args: argparse.Namespace, out: Output) -> int:
        template_id = resolve_template(api, args.template)
        item = (api.add_module if kind == "module" else api.add_library)(template_id, args.name)
        return out.result(item, lambda: out.line(f"added {kind} {item.get('name', args.name)}"))
    return handler


def _remover(kind: str) -> Any:
    def handler(api: Any, args: argparse.Namespace, out: Output) -> int:
        template_id = resolve_template(api, args.template)
        result = (api.remove_module if kind == "module" else api.remove_library)(template_id, args.name)
        return out.result(result, lambda: out.line(f"removed {kind} {args.name}"))
    return handler


def _lister(kind: str) -> Any:
    plural = "modules" if kind == "module" else "libraries"

    def handler(api: Any, args: argparse.Namespace, out: Output) -> int:
        template_id = resolve_template(api, args.template)
        items = (api.list_modules if kind == "module" else api.list_libraries)(template_id)
        return out.result(items, lambda: _names_table(out, items, plural))
    return handler


def _add_capability(api: Any, args: argparse.Namespace, out: Output) -> int:
    config = json_object(args.config, "--config") if args.config is not None else None
    cap = api.add_capability(resolve_template(api, args.template), args.kind, args.name or args.kind,
                             enabled=not args.disabled, config=config)
    state = "enabled" if cap.get("enabled") else "disabled"
    return out.result(cap, lambda: out.line(
        f"added capability {cap.get('kind')}:{cap.get('name')} ({state}, id {cap.get('id')})"))


def _list_capabilities(api: Any, args: argparse.Namespace, out: Output) -> int:
    caps = api.list_capabilities(resolve_template(api, args.template))
    return out.result(caps, lambda: _capability_table(out, caps))


def _remove_capability(api: Any, args: argparse.Namespace, out: Output) -> int:
    result = api.delete_capability(resolve_template(api, args.template), args.capability_id)
    return out.result(result, lambda: out.line(f"removed capability {args.capability_id}"))
