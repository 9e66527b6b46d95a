"""Checkpoints, clones and signed images."""

from __future__ import annotations

import dataclasses

import pytest

from sandbox import ImageError, Limits, Sandbox, guest_engine
from sandbox.image import FORMAT_VERSION, encode_image, image_header

KEY = b"k" * 32


@pytest.fixture
def stateful() -> Sandbox:
    sb = Sandbox()
    sb.eval("var counter = 41; const bump = () => ++counter; class Box { constructor(v) { this.v = v } }")
    return sb


def test_image_round_trip_keeps_globals_and_closures(stateful: Sandbox) -> None:
    data = stateful.image(key=KEY, context="session-1")
    restored = Sandbox.from_image(data, key=KEY, context="session-1")
    out = restored.eval("bump(); new Box(counter).v")
    assert out.value is not None and out.value["json"] == 42
    # The restored sandbox is independent of its origin.
    assert stateful.eval("counter").value["json"] == 41  # type: ignore[index]


def test_clone_is_independent(stateful: Sandbox) -> None:
    twin = stateful.clone()
    assert twin.eval("bump()").value["json"] == 42  # type: ignore[index]
    twin.eval("counter = 0")
    assert stateful.eval("counter").value["json"] == 41  # type: ignore[index]
    assert twin.eval("counter").value["json"] == 0  # type: ignore[index]


def test_image_header_describes_the_image(stateful: Sandbox) -> None:
    header = image_header(stateful.image(key=KEY))
    assert header["format_version"] == FORMAT_VERSION
    assert len(header["guest_sha256"]) == 64
    assert header["memory_size"] % 65536 == 0


@pytest.mark.parametrize("mutation", ["flip_payload", "flip_header", "truncate", "extend", "empty", "garbage"])
def test_tampered_images_are_refused(stateful: Sandbox, mutation: str) -> None:
    data = bytearray(stateful.image(key=KEY))
    if mutation == "flip_payload":
        data[len(data) // 2] ^= 0x01
    elif mutation == "flip_header":
        data[20] ^= 0x01
    elif mutation == "truncate":
        del data[-100:]
    elif mutation == "extend":
        data += b"\0"
    elif mutation == "empty":
        data = bytearray()
    else:
        data = bytearray(b"not an image at all" * 10)
    with pytest.raises(ImageError):
        Sandbox.from_image(bytes(data), key=KEY)


@pytest.mark.parametrize("version", [2, 3])
def test_an_older_image_is_still_read(stateful: Sandbox, monkeypatch: pytest.MonkeyPatch,
                                      version: int) -> None:
    """Images persisted before the rejection tracker (format 2) or before the event loop's
    helper (format 3: four helpers) restore as they were; one offering host functions cannot."""
    import sandbox.image as image_mod

    snapshot = stateful.snapshot()
    old = dataclasses.replace(snapshot, layout=dataclasses.replace(
        snapshot.layout, helpers=snapshot.layout.helpers[:4]))
    monkeypatch.setattr(image_mod, "FORMAT_VERSION", version)
    data = encode_image(old, guest_engine().guest_sha256, KEY)
    monkeypatch.undo()
    assert image_header(data[:-32])["format_version"] == version
    assert len(image_header(data[:-32])["layout"]["helpers"]) == 4
    restored = Sandbox.from_image(data, key=KEY)
    assert restored.eval("bump()").value["json"] == 42  # type: ignore[index]
    with pytest.raises(ImageError, match="predates timers and host functions"):
        Sandbox.from_image(data, key=KEY, functions={"f": lambda: 1})


def test_a_format_4_image_is_refused_by_name(stateful: Sandbox,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Format 4 was only written by development builds whose host bridge answered otherwise."""
    import sandbox.image as image_mod

    monkeypatch.setattr(image_mod, "FORMAT_VERSION", 4)
    data = encode_image(stateful.snapshot(), guest_engine().guest_sha256, KEY)
    monkeypatch.undo()
    with pytest.raises(ImageError, match="format version 4 cannot be restored: .*development build"):
        Sandbox.from_image(data, key=KEY)


def test_an_image_with_four_helpers_is_not_read_as_the_current_version(
        stateful: Sandbox) -> None:
    snapshot = stateful.snapshot()
    old = dataclasses.replace(snapshot, layout=dataclasses.replace(
        snapshot.layout, helpers=snapshot.layout.helpers[:4]))
    with pytest.raises(ImageError, match="not a list of 5 values"):
        Sandbox.from_image(encode_image(old, guest_engine().guest_sha256, KEY), key=KEY)


def test_image_bound_to_key_and_context(stateful: Sandbox) -> None:
    data = stateful.image(key=KEY, context="session-a")
    with pytest.raises(ImageError):
        Sandbox.from_image(data, key=b"x" * 32, context="session-a")
    with pytest.raises(ImageError):
        Sandbox.from_image(data, key=KEY, context="session-b")


def test_image_of_another_guest_is_refused(stateful: Sandbox) -> None:
    snapshot = stateful._instance.capture()
    foreign = encode_image(snapshot, "0" * 64, KEY)
    with pytest.raises(ImageError, match="another guest"):
        Sandbox.from_image(foreign, key=KEY)


def test_image_larger_than_the_memory_limit_is_refused() -> None:
    with Sandbox(limits=Limits(mem_mb=64)) as big:
        big.eval("globalThis.blob = new Uint8Array(40 * 1024 * 1024).fill(1)")
        data = big.image(key=KEY)
    with pytest.raises(ImageError, match="limit"):
        Sandbox.from_image(data, key=KEY, limits=Limits(mem_mb=16))


def test_explicit_checkpoint_is_the_rollback_target() -> None:
    with Sandbox(auto_checkpoint=False) as sb:
        sb.eval("var stage = 'one'")
        label = sb.checkpoint("after-one")
        sb.eval("stage = 'two'")
        out = sb.eval("function g() { return g() + 1 } g()")
        assert out.session_state.state == "rolled_back"
        assert out.session_state.checkpoint == label == "after-one"
        assert sb.eval("stage").value["json"] == "one"  # type: ignore[index]


OVERFLOW = "function g() { return g() + 1 } g()"


def test_without_a_checkpoint_a_trap_rolls_back_to_the_initial_state() -> None:
    with Sandbox() as sb:  # explicit checkpoints: the default
        sb.eval("var stage = 'one'")
        out = sb.eval(OVERFLOW)
        assert out.session_state.state == "rolled_back"
        assert out.session_state.checkpoint == "initial"
        assert sb.eval("typeof stage").value["json"] == "undefined"  # type: ignore[index]


def test_auto_checkpoint_rolls_back_only_the_trapping_evaluation() -> None:
    with Sandbox(auto_checkpoint=True) as sb:
        sb.eval("var stage = 'one'")
        sb.eval("stage = 'two'", checkpoint_label="second")
        out = sb.eval("stage = 'three'; " + OVERFLOW)
        assert out.session_state.state == "rolled_back"
        assert out.session_state.checkpoint == "second"
        assert sb.eval("stage").value["json"] == "two"  # type: ignore[index]


def test_clone_starts_from_the_current_state_not_the_last_checkpoint() -> None:
    with Sandbox() as sb:
        sb.eval("var stage = 'one'")
        label = sb.checkpoint("after-one")
        with sb.clone() as at_checkpoint:
            assert at_checkpoint.checkpoint_label == label
            assert at_checkpoint.eval("stage").value["json"] == "one"  # type: ignore[index]
        sb.eval("stage = 'two'")
        with sb.clone() as moved_on:
            assert moved_on.eval("stage").value["json"] == "two"  # type: ignore[index]
            # Its own rollback target is the state it was cloned from.
            assert moved_on.eval(OVERFLOW).session_state.checkpoint == "clone"
            assert moved_on.eval("stage").value["json"] == "two"  # type: ignore[index]


@pytest.mark.parametrize("code", [
    "1 + 1", "throw new Error('x')", "Promise.resolve(1).then(v => v + 1)",
    "(async () => { await null; return [1, 2] })()", "JSON.parse('[' + '1,'.repeat(999) + '1]').length",
    "for (;;) {}", "function f(n) { return n ? f(n - 1) : 0 } f(1500)",
])
def test_the_stack_pointer_between_evaluations_is_the_one_images_record(code: str) -> None:
    """Checkpoints record the stack pointer without asking the engine (it only moves during
    guest calls, which restore it): check that it is really where they say."""
    with Sandbox(limits=Limits(cpu_ms=50)) as sb:
        for _ in range(2):
            sb.eval(code)
            inst = sb._instance
            assert inst.stack_pointer() == inst.rest_stack_pointer() == sb.snapshot().stack_pointer


def test_closed_sandbox_refuses_work() -> None:
    from sandbox import SandboxClosed

    sb = Sandbox()
    sb.close()
    sb.close()  # idempotent
    with pytest.raises(SandboxClosed):
        sb.eval("1")
