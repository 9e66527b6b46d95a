"""The engine and the store raise errors with kinds; the adapters give each the API code it has
always had. The table below is the codes those errors carried themselves before kinds existed:
the wire must not notice the change."""

from __future__ import annotations

import pickle

import pytest

import sandbox
import store
from supervisor.adapters.error_codes import CODE_BY_KIND, api_code
from supervisor.adapters.http.errors import STATUS_BY_CODE, status_of
from supervisor.errors import SessionNotReady, ShuttingDown, SupervisorError, ValidationError

CODES: dict[type[Exception], str] = {
    sandbox.SandboxError: "INTERNAL",
    sandbox.EngineUnavailable: "INTERNAL",
    sandbox.SandboxClosed: "SESSION_NOT_READY",
    sandbox.SandboxBusy: "SESSION_BUSY",
    sandbox.ImageError: "IMAGE_INVALID",
    sandbox.GuestCorrupted: "INTERNAL",
    store.StoreError: "INTERNAL",
    store.NotFound: "NOT_FOUND",
    store.TemplateNotFound: "TEMPLATE_NOT_FOUND",
    store.SessionNotFound: "SESSION_NOT_FOUND",
    store.ExecutionNotFound: "EXECUTION_NOT_FOUND",
    store.ImageNotFound: "IMAGE_NOT_FOUND",
    store.AlreadyExists: "CONFLICT",
    store.TemplateExists: "TEMPLATE_EXISTS",
    store.CapabilityExists: "CAPABILITY_EXISTS",
    store.StartupFileExists: "STARTUP_FILE_EXISTS",
    store.ModuleExists: "MODULE_EXISTS",
    store.LibraryExists: "LIBRARY_EXISTS",
    store.DuplicateId: "INTERNAL",
    store.SessionBusy: "SESSION_BUSY",
    store.InvalidValue: "VALIDATION_ERROR",
    store.InvariantViolation: "INTERNAL",
    store.ExecutionNotRunning: "INTERNAL",
    store.EventSequenceError: "INTERNAL",
    store.InvalidTransition: "INTERNAL",
    store.StoreWriteError: "INTERNAL",
    store.StoreReadError: "INTERNAL",
    store.StoreOpenError: "INTERNAL",
    store.SchemaTooNew: "INTERNAL",
    store.StoreClosed: "INTERNAL",
}


def _subclasses(base: type[Exception]) -> set[type[Exception]]:
    found = set(base.__subclasses__())
    for cls in list(found):
        found |= _subclasses(cls)
    return found


def _public(classes: set[type[Exception]], package: str) -> set[type[Exception]]:
    return {c for c in classes if c.__module__.startswith(package + ".") and not c.__name__.startswith("_")}


def test_every_public_engine_and_store_error_is_in_the_table() -> None:
    engine = _public(_subclasses(sandbox.SandboxError), "sandbox") | {sandbox.SandboxError}
    stored = _public(_subclasses(store.StoreError), "store") | {store.StoreError}
    assert engine | stored == set(CODES)


@pytest.mark.parametrize("cls", sorted(CODES, key=lambda c: c.__module__ + c.__name__), ids=lambda c: c.__name__)
def test_each_error_keeps_its_api_code_and_status(cls: type[Exception]) -> None:
    error = cls.__new__(cls)  # some take arguments the code does not depend on
    assert api_code(error) == CODES[cls]
    assert status_of(api_code(error)) == STATUS_BY_CODE.get(CODES[cls], 500)


def test_engine_and_store_errors_carry_no_api_code() -> None:
    for cls in CODES:
        assert not hasattr(cls, "code"), f"{cls.__name__} speaks the API: give it a kind instead"


def test_every_code_of_the_table_has_its_documented_status_or_is_internal() -> None:
    for code in CODE_BY_KIND.values():
        assert code in STATUS_BY_CODE or code.startswith("IMAGE_"), code


def test_supervisor_errors_keep_their_own_codes() -> None:
    assert api_code(ValidationError("bad")) == "VALIDATION_ERROR"
    assert api_code(SessionNotReady("not yet")) == "SESSION_NOT_READY"
    assert api_code(ShuttingDown("bye")) == "SHUTTING_DOWN"
    assert api_code(SupervisorError("boom")) == "INTERNAL"
    assert api_code(RuntimeError("not ours")) == "INTERNAL"


@pytest.mark.parametrize("cls", [c for c in CODES if c not in (store.StoreWriteError, store.StoreReadError,
                                                                store.SchemaTooNew)],
                         ids=lambda c: c.__name__)
def test_an_error_crosses_a_process_boundary_as_itself(cls: type[Exception]) -> None:
    # A worker process sends its failures back pickled (supervisor/shard_worker.py).
    back = pickle.loads(pickle.dumps(cls("what happened")))
    assert type(back) is cls and str(back) == "what happened"
    assert api_code(back) == CODES[cls]
