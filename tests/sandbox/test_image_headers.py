"""Signed images with hostile headers: refused with ImageError, never a fault.

The HMAC only proves who made an image. Whoever holds the key (or the pristine cache's
public one) can sign any header, so every field is checked for type, range and consistency
with the memory size and the guest's layout before one byte reaches guest memory. These tests
sign hostile headers with the module's own MAC, as such an attacker would.

A gap in that validation used to make the host copy out of bounds and die with SIGSEGV, so
every case that can fault runs in a child process: a regression shows as failed tests naming
the case that killed the child, not as a dead pytest run.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sandbox import ImageError, Limits, Sandbox
from sandbox.image import MAGIC, _mac, decode_image, encode_image, image_header
from sandbox.instance import GuestInstance
from sandbox.memory_layout import OLD_STACK, PAGE, STACK_BLOCK, Layout, MemoryImage

KEY = b"hostile-header-test-key-32-bytes"
CONTEXT = "session-hostile"
_HERE = Path(__file__).resolve()
_REPO = _HERE.parents[2]
# What a restored sandbox may spend on one evaluation: a header that slips through with a
# plausible but wrong pointer must still end in an Outcome, not hang the run.
_EVAL_LIMITS = Limits(cpu_ms=500, wall_ms=3000)

Mutation = Callable[[dict[str, Any]], Any]


# ----- signing -------------------------------------------------------------------------------


def split(data: bytes) -> tuple[dict[str, Any], bytes]:
    """The header and the compressed memory of a genuine image."""
    (size,) = struct.unpack_from("<I", data, len(MAGIC))
    start = len(MAGIC) + 4
    return json.loads(data[start:start + size]), data[start + size:-32]


def sign(header: Any, payload: bytes, *, raw_header: bytes | None = None,
         header_length: int | None = None) -> bytes:
    """An image with this header and payload, signed with the real MAC: what a key holder makes."""
    encoded = raw_header if raw_header is not None else json.dumps(header).encode()
    length = len(encoded) if header_length is None else header_length
    body = MAGIC + struct.pack("<I", length) + encoded + payload
    return body + _mac(KEY, CONTEXT, body)


def genuine_image() -> bytes:
    with Sandbox() as sb:
        sb.eval("var counter = 41; globalThis.bump = () => ++counter")
        return sb.image(key=KEY, context=CONTEXT)


# ----- the hostile cases ---------------------------------------------------------------------

_TOP_INTS = ("format_version", "memory_size", "stored_bytes", "stack_pointer")
_LAYOUT_INTS = ("rt", "ctx", "scratch", "filename", "source", "stack_lo", "stack_hi",
                "old_stack_lo", "table_base", "rodata_end", "interrupt_counter")


def _path_set(header: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    target = header
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return header


def _path_get(header: dict[str, Any], path: tuple[Any, ...]) -> Any:
    for step in path:
        header = header[step]
    return header


def _wrong_types(value: Any) -> dict[str, Any]:
    return {"str": str(value), "float": float(value) if isinstance(value, int) else 1.0,
            "bool": True, "null": None, "list": [value], "dict": {"value": value}}


def hostile_cases(header: dict[str, Any]) -> dict[str, Mutation]:
    """Name -> a mutation of a genuine header that must be refused."""
    size = header["memory_size"]
    lay = header["layout"]
    cases: dict[str, Mutation] = {}

    def put(name: str, path: tuple[Any, ...], value: Any) -> None:
        cases[name] = lambda h, p=path, v=value: _path_set(h, p, v)

    paths = ([(k,) for k in _TOP_INTS] + [("layout", k) for k in _LAYOUT_INTS]
             + [("layout", "helpers", i) for i in range(4)])
    for path in paths:
        name = ".".join(map(str, path))
        valid = _path_get(header, path)
        for kind, value in _wrong_types(valid).items():
            put(f"{name}:{kind}", path, value)
        put(f"{name}:negative", path, -1 if valid >= 0 else valid - 2**64)
        put(f"{name}:huge", path, 2**64)
        put(f"{name}:alias_mod_2**32", path, valid + 2**32)
    for kind, value in _wrong_types(1).items():
        if kind != "str":
            put(f"guest_sha256:{kind}", ("guest_sha256",), value)
    put("guest_sha256:upper", ("guest_sha256",), header["guest_sha256"].upper())
    for kind, value in _wrong_types(lay["helpers"]).items():
        if kind != "list":
            put(f"layout.helpers:{kind}", ("layout", "helpers"), value)
    for kind, value in _wrong_types(0).items():
        put(f"layout:{kind}", ("layout",), value)
    put("layout.helpers:three", ("layout", "helpers"), lay["helpers"][:3])
    put("layout.helpers:five", ("layout", "helpers"), lay["helpers"] + lay["helpers"][:1])
    put("layout.helpers:empty", ("layout", "helpers"), [])
    put("layout.helpers[0]:not_an_object", ("layout", "helpers", 0), lay["helpers"][0] & 0xFFFFFFFF)
    put("layout.helpers[0]:pointer_beyond_memory", ("layout", "helpers", 0), -(2**32) + size)
    put("layout.helpers[0]:pointer_in_the_stack", ("layout", "helpers", 0), -(2**32) + lay["stack_lo"])

    # Addresses outside guest memory, or whose extent crosses its end.
    for field in ("rt", "ctx", "scratch", "filename", "source"):
        put(f"{field}:at_memory_size", ("layout", field), size)
        put(f"{field}:below_the_heap", ("layout", field), lay["stack_hi"] - 16)
        put(f"{field}:zero", ("layout", field), 0)
        put(f"{field}:unaligned", ("layout", field), lay[field] + 1)
    put("source:buffer_crosses_the_end", ("layout", "source"), size - 16)
    put("scratch:crosses_the_end", ("layout", "scratch"), size - 8)
    put("source:overlaps_scratch", ("layout", "source"), lay["scratch"] - 16)
    put("scratch:inside_source", ("layout", "scratch"), lay["source"] + 64)
    put("filename:is_scratch", ("layout", "filename"), lay["scratch"])
    put("ctx:is_rt", ("layout", "ctx"), lay["rt"])
    put("rt:inside_source", ("layout", "rt"), lay["source"] + 128)
    put("interrupt_counter:beyond_memory", ("layout", "interrupt_counter"), size)
    put("interrupt_counter:last_word_plus_one", ("layout", "interrupt_counter"), size - 3)
    put("interrupt_counter:outside_ctx", ("layout", "interrupt_counter"), lay["source"])
    put("interrupt_counter:unaligned", ("layout", "interrupt_counter"), lay["interrupt_counter"] + 1)

    cases |= _layout_cases(header)
    return cases


def _layout_cases(header: dict[str, Any]) -> dict[str, Mutation]:
    """Hostile values of the stack, the copied ranges, the memory size and the header's shape."""
    size = header["memory_size"]
    lay = header["layout"]
    cases: dict[str, Mutation] = {}

    def put(name: str, path: tuple[Any, ...], value: Any) -> None:
        cases[name] = lambda h, p=path, v=value: _path_set(h, p, v)

    # The stack and the ranges a checkpoint copies.
    put("stack_pointer:zero", ("stack_pointer",), 0)
    put("stack_pointer:above_the_block", ("stack_pointer",), lay["stack_hi"] + 16)
    put("stack_pointer:in_the_guard", ("stack_pointer",), lay["stack_lo"] + 16)
    put("stack_pointer:in_the_red_zone", ("stack_pointer",), lay["stack_lo"] + 96 * 1024)
    put("stack_pointer:unaligned", ("stack_pointer",), header["stack_pointer"] - 1)
    put("stack_pointer:beyond_memory", ("stack_pointer",), size + 16)

    def layout_edit(**fields: int) -> Mutation:
        def edit(h: dict[str, Any]) -> dict[str, Any]:
            h["layout"].update(fields)
            h["stored_bytes"] = Layout(**(h["layout"] | {"helpers": tuple(h["layout"]["helpers"])})
                                       ).kept_bytes(h["memory_size"])
            return h
        return edit

    # Each keeps stored_bytes consistent, so only the layout check can refuse it.
    cases["old_stack_overlaps_the_block"] = layout_edit(old_stack_lo=lay["stack_lo"] - 16)
    cases["old_stack_below_rodata"] = layout_edit(old_stack_lo=lay["rodata_end"] - 16)
    cases["old_stack_moved_down"] = layout_edit(old_stack_lo=lay["old_stack_lo"] - 4096)
    cases["old_stack_moved_up"] = layout_edit(old_stack_lo=lay["old_stack_lo"] + 4096)
    cases["rodata_end_lowered"] = layout_edit(rodata_end=lay["rodata_end"] - 4096)
    cases["rodata_end_raised"] = layout_edit(rodata_end=lay["rodata_end"] + 4096)
    cases["rodata_end_zero"] = layout_edit(rodata_end=0)
    cases["tiny_stack_block"] = layout_edit(stack_hi=lay["stack_lo"] + 16)
    cases["stack_block_one_page_short"] = layout_edit(stack_hi=lay["stack_hi"] - 4096)
    cases["stack_block_past_memory"] = layout_edit(stack_lo=size - 4096, stack_hi=size - 4096 + STACK_BLOCK)
    cases["stack_block_inverted"] = layout_edit(stack_lo=lay["stack_hi"], stack_hi=lay["stack_lo"])
    cases["stack_block_unaligned"] = layout_edit(stack_lo=lay["stack_lo"] + 8, stack_hi=lay["stack_hi"] + 8)
    cases["guard_overlaps_old_stack"] = layout_edit(stack_lo=lay["old_stack_lo"] + OLD_STACK - 16,
                                                   stack_hi=lay["old_stack_lo"] + OLD_STACK - 16 + STACK_BLOCK)
    cases["table_base_shifted"] = layout_edit(table_base=lay["table_base"] + 1)
    cases["table_base_zero"] = layout_edit(table_base=0)

    # The memory size, against the layout and the module.
    def sized(new_size: int) -> Mutation:
        def edit(h: dict[str, Any]) -> dict[str, Any]:
            h["memory_size"] = new_size
            return h
        return edit

    cases["memory_size:not_a_page_multiple"] = sized(size + 1)
    cases["memory_size:one_page_less"] = sized(size - PAGE)
    cases["memory_size:zero"] = sized(0)
    cases["memory_size:4GiB"] = sized(2**32)
    cases["memory_size:below_the_heap"] = sized(lay["stack_hi"] - (lay["stack_hi"] % PAGE))
    cases["stored_bytes:one_more"] = lambda h: _path_set(h, ("stored_bytes",), h["stored_bytes"] + 1)
    cases["stored_bytes:one_less"] = lambda h: _path_set(h, ("stored_bytes",), h["stored_bytes"] - 1)
    cases["stored_bytes:zero"] = lambda h: _path_set(h, ("stored_bytes",), 0)
    cases["format_version:2.0"] = lambda h: _path_set(h, ("format_version",), 2.0)
    cases["format_version:future"] = lambda h: _path_set(h, ("format_version",), 99)

    # The header's shape.
    cases["header:list"] = lambda h: [h]
    cases["header:number"] = lambda h: 3
    cases["header:string"] = lambda h: "format_version"
    cases["header:null"] = lambda h: None
    cases["header:true"] = lambda h: True
    cases["header:empty_object"] = lambda h: {}
    for key in list(header):
        cases[f"missing:{key}"] = lambda h, k=key: {x: v for x, v in h.items() if x != k}
    for key in list(lay):
        cases[f"missing:layout.{key}"] = lambda h, k=key: _path_set(
            h, ("layout",), {x: v for x, v in h["layout"].items() if x != k})
    # Unknown fields are refused, not ignored: a reader that ignored them could restore an
    # image whose writer meant something this reader does not know about.
    cases["extra:top_level"] = lambda h: h | {"entry_point": 0}
    cases["extra:layout"] = lambda h: _path_set(h, ("layout",), h["layout"] | {"heap_base": 0})
    return cases


def raw_cases(data: bytes) -> dict[str, bytes]:
    """Name -> a whole signed image whose bytes (not the header's values) are hostile."""
    header, payload = split(data)
    good = json.dumps(header).encode()
    memory = zlib.decompress(payload)
    deep = b"[" * 100_000 + b"]" * 100_000
    return {
        "body:truncated": sign(header, payload[:-10]),
        "body:empty": sign(header, b""),
        "body:trailing_bytes": sign(header, payload + b"\0"),
        "body:second_stream": sign(header, payload + zlib.compress(b"x")),
        "body:not_zlib": sign(header, b"\x00" * len(payload)),
        "body:too_short": sign(header, zlib.compress(memory[:-1])),
        "body:too_long": sign(header, zlib.compress(memory + b"\0")),
        "header_length:past_the_end": sign(header, payload, header_length=len(good) + len(payload) + 100),
        "header_length:max_u32": sign(header, payload, header_length=0xFFFFFFFF),
        "header_length:zero": sign(header, payload, header_length=0),
        "header_length:one_short": sign(header, payload, header_length=len(good) - 1),
        "header:not_utf8": sign(None, payload, raw_header=b"\xff\xfe" + good),
        "header:nan": sign(None, payload, raw_header=good.replace(
            b'"memory_size": %d' % header["memory_size"], b'"memory_size": NaN')),
        "header:infinity": sign(None, payload, raw_header=good.replace(
            b'"stack_pointer": %d' % header["stack_pointer"], b'"stack_pointer": Infinity')),
        "header:deeply_nested": sign(None, payload, raw_header=deep),
        "header:duplicate_key": sign(None, payload, raw_header=good[:-1] + b', "memory_size": 0}'),
        "header:4000_digit_int": sign(None, payload, raw_header=good.replace(
            b'"stored_bytes": %d' % header["stored_bytes"], b'"stored_bytes": ' + b"9" * 4000)),
    }


# ----- the child process ---------------------------------------------------------------------


def outcome_of(data: bytes) -> str:
    """What restoring `data` and evaluating in it does, as one line: ImageError, ok, or other."""
    try:
        sb = Sandbox.from_image(data, key=KEY, context=CONTEXT, limits=_EVAL_LIMITS)
    except ImageError as exc:
        return f"ImageError: {exc}"
    with sb:
        first = sb.eval("typeof bump === 'function' ? bump() : 'no bump'")
        second = sb.eval("[1, 2, 3].map(x => x * 2).join(',')")
    value = first.value["json"] if first.value else None
    return f"ok {first.status} {value!r} {second.status}"


def _child_cases() -> None:
    data = genuine_image()
    header, payload = split(data)
    images = {name: sign(mutate(copy.deepcopy(header)), payload)
              for name, mutate in hostile_cases(header).items()}
    images |= raw_cases(data)
    for name, image in images.items():
        # Printed before the attempt: a fault then names the case that caused it.
        print(f"start\t{name}", flush=True)
        try:
            result = outcome_of(image)
        except Exception as exc:  # reported to the parent, which fails the case
            result = f"other: {type(exc).__name__}: {exc}"
        print(f"done\t{name}\t{result}", flush=True)


def _child_restore() -> None:
    """MemoryImages that never went through decode_image: the restore code must refuse them
    itself, so no path writes outside the instance's memory even if validation has a gap."""
    with Sandbox() as sb:
        good = sb.snapshot()
    data = bytes(good.data)
    lay = good.layout
    size = good.size

    def moved(**fields: int) -> Layout:
        return Layout(**(lay.to_json() | {"helpers": lay.helpers} | fields))

    images = {
        "negative_range": MemoryImage(data, size, good.stack_pointer,
                                      moved(old_stack_lo=lay.stack_lo - 16)),
        "data_too_short": MemoryImage(data[:-PAGE], size, good.stack_pointer, lay),
        "data_too_long": MemoryImage(data + bytes(PAGE), size, good.stack_pointer, lay),
        "size_below_the_layout": MemoryImage(data, lay.stack_hi // PAGE * PAGE, good.stack_pointer, lay),
        "block_past_the_end": MemoryImage(data, size, good.stack_pointer,
                                          moved(stack_lo=size - 4096, stack_hi=size + STACK_BLOCK)),
        "beyond_the_memory_limit": MemoryImage(data + bytes(64 * 1024 * 1024), size + 64 * 1024 * 1024,
                                               good.stack_pointer, lay),
        "not_a_page_multiple": MemoryImage(data + bytes(16), size + 16, good.stack_pointer, lay),
    }
    for name, image in images.items():
        print(f"start\t{name}", flush=True)
        try:
            GuestInstance(_Quiet(), 32 * 1024 * 1024, image=image).close()
            result = "ok"
        except ImageError as exc:
            result = f"ImageError: {exc}"
        except Exception as exc:  # reported to the parent, which fails the case
            result = f"other: {type(exc).__name__}: {exc}"
        print(f"done\t{name}\t{result}", flush=True)


class _Quiet:
    def interrupt(self, stack_pointer: int) -> bool:
        return False

    def deadline(self) -> bool:
        return False

    def console(self, level: int, text_bytes: int) -> bool:
        return True

    def console_text(self, level: int, text: str) -> None:
        return None


def _shape_changed() -> contextlib.AbstractContextManager[None]:
    """An earlier edit removed or replaced what a later one edits: that edit has no target."""
    return contextlib.suppress(KeyError, IndexError, TypeError)


def _child_hypothesis() -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    data = genuine_image()
    header, payload = split(data)
    size = header["memory_size"]
    lay = header["layout"]
    paths = ([(k,) for k in header if k != "layout"] + [("layout", k) for k in lay if k != "helpers"]
             + [("layout", "helpers", i) for i in range(4)])
    shapes = [("layout", "helpers"), ("layout",)]
    addresses = sorted({v for k, v in lay.items() if k != "helpers"} | {size, header["stack_pointer"]})
    # Near misses reach the deep checks: most edits keep a field an integer close to a value
    # it or another field legitimately holds.
    deltas = st.one_of(st.sampled_from([0, 1, -1, 4, -4, 8, -8, 16, -16, 4096, -4096, PAGE, -PAGE,
                                        STACK_BLOCK, -STACK_BLOCK, 2**32, -(2**32)]),
                       st.integers(-(2**20), 2**20))
    junk = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False, allow_infinity=False),
                     st.text(max_size=8), st.lists(st.integers(), max_size=5),
                     st.dictionaries(st.text(max_size=4), st.integers(), max_size=3),
                     st.integers(-(2**70), 2**70))

    def edit_for(data: Any, h: dict[str, Any]) -> None:
        kind = data.draw(st.sampled_from(["near"] * 6 + ["other_field", "junk", "delete", "add", "shape"]))
        if kind == "add":
            target = data.draw(st.sampled_from([(), ("layout",)]))
            with _shape_changed():
                _path_get(h, target)[data.draw(st.text(min_size=1, max_size=6))] = 0
            return
        value: Any = None
        if kind == "shape":
            path = data.draw(st.sampled_from(shapes))
            value = data.draw(junk)
        else:
            path = data.draw(st.sampled_from(paths))
            if kind == "near":
                with _shape_changed():
                    base = _path_get(h, path)
                    value = base + data.draw(deltas) if type(base) is int else data.draw(junk)
            elif kind == "other_field":
                value = data.draw(st.sampled_from(addresses)) + data.draw(st.sampled_from([0, 16, -16]))
                if path[-1] in range(4):
                    value -= 2**32  # an object JSValue pointing there
            elif kind == "junk":
                value = data.draw(junk)
        with _shape_changed():
            if kind == "delete":
                del _path_get(h, path[:-1])[path[-1]]
            else:
                _path_get(h, path[:-1])[path[-1]] = value

    @settings(max_examples=int(os.environ.get("HEADER_EXAMPLES", "300")), deadline=None,
              database=None, suppress_health_check=list(HealthCheck), print_blob=True)
    @given(st.data(), st.integers(1, 4), st.booleans())
    def restoring_refuses_or_works(data: Any, edits: int, fix_stored: bool) -> None:
        h = copy.deepcopy(header)
        for _ in range(edits):
            edit_for(data, h)
        if fix_stored:
            # Keep stored_bytes in step with the layout, so the range checks are reached.
            try:
                fields = dict(h["layout"]) | {"helpers": tuple(h["layout"]["helpers"])}
                h["stored_bytes"] = Layout(**fields).kept_bytes(h["memory_size"])
            except Exception:  # a header too broken to compute it for
                pass
        result = outcome_of(sign(h, payload))
        assert result.startswith(("ImageError", "ok ")), result

    restoring_refuses_or_works()
    print("hypothesis: all examples refused or restored", flush=True)


def run_child(mode: str, **env: str) -> subprocess.CompletedProcess[str]:
    code = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('image_header_child', {str(_HERE)!r})\n"
            "module = importlib.util.module_from_spec(spec)\n"
            "spec.loader.exec_module(module)\n"
            f"module._child_{mode}()\n")
    return subprocess.run([sys.executable, "-c", code], cwd=_REPO, capture_output=True, text=True,
                          timeout=900, env=os.environ | env)


def parse(proc: subprocess.CompletedProcess[str]) -> tuple[dict[str, str], str | None]:
    """Each finished case's result, and the case the child was in when it died (if it did)."""
    done: dict[str, str] = {}
    started = None
    for line in proc.stdout.splitlines():
        parts = line.split("\t", 2)
        if parts[0] == "start":
            started = parts[1]
        elif parts[0] == "done":
            done[parts[1]] = parts[2]
            started = None
    return done, started


# ----- the tests -----------------------------------------------------------------------------

_GENUINE = genuine_image()
_CASES = sorted(hostile_cases(split(_GENUINE)[0])) + sorted(raw_cases(_GENUINE))


@pytest.fixture(scope="module")
def child_cases() -> tuple[subprocess.CompletedProcess[str], dict[str, str], str | None]:
    proc = run_child("cases")
    return (proc, *parse(proc))


@pytest.mark.parametrize("case", _CASES)
def test_hostile_image_is_refused_with_image_error(child_cases: Any, case: str) -> None:
    proc, done, died_in = child_cases
    assert case in done, (f"the child exited {proc.returncode} (a negative code is a signal) "
                          f"while restoring {died_in!r}, before this case; stderr: {proc.stderr[-2000:]}")
    assert done[case].startswith("ImageError: "), done[case]


def test_the_child_exits_cleanly(child_cases: Any) -> None:
    proc, done, died_in = child_cases
    assert proc.returncode == 0, (proc.returncode, died_in, proc.stderr[-2000:])
    assert len(done) == len(_CASES)


def test_restore_checks_bounds_itself() -> None:
    proc = run_child("restore")
    done, died_in = parse(proc)
    assert proc.returncode == 0, (proc.returncode, died_in, proc.stderr[-2000:])
    assert len(done) == 7, done
    for name, result in done.items():
        assert result.startswith("ImageError: "), (name, result)


def test_mutated_headers_are_refused_or_restore_into_a_working_sandbox() -> None:
    proc = run_child("hypothesis")
    assert proc.returncode == 0, (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:])
    assert "all examples refused or restored" in proc.stdout


# In-process: what validation must keep accepting.


def test_the_genuine_header_is_accepted_after_a_resign() -> None:
    header, payload = split(genuine_image())
    out = outcome_of(sign(header, payload))
    assert out == "ok ok 42 ok", out


def test_an_image_of_a_grown_heap_is_accepted() -> None:
    with Sandbox(limits=Limits(mem_mb=64)) as sb:
        sb.eval("globalThis.blob = new Uint8Array(8 * 1024 * 1024).fill(7)")
        data = sb.image(key=KEY, context=CONTEXT)
    assert image_header(data)["memory_size"] > 8 * 1024 * 1024
    with Sandbox.from_image(data, key=KEY, context=CONTEXT, limits=Limits(mem_mb=64)) as restored:
        assert restored.eval("blob[12345] + blob.length").value["json"] == 7 + 8 * 1024 * 1024  # type: ignore[index]


def test_the_validator_knows_the_layout_a_fresh_instance_makes() -> None:
    """The facts the validator holds images to are those of the guest as the engine sets it
    up from scratch (not from the pristine image, which itself went through validation)."""
    fresh = GuestInstance(_Quiet(), 64 * 1024 * 1024)
    try:
        lay, size, sp = fresh.layout, fresh.memory_size(), fresh.rest_stack_pointer()
        image = fresh.capture()
    finally:
        fresh.close()
    from sandbox.image import guest_facts

    facts = guest_facts()
    assert lay.rodata_end == facts.rodata_end
    assert lay.old_stack_lo + OLD_STACK == facts.old_stack_top
    assert lay.table_base == facts.table_base
    assert size >= facts.min_memory
    assert sp == lay.stack_hi
    from sandbox.guest import guest_sha256

    decoded = decode_image(encode_image(image, guest_sha256(), KEY), guest_sha256(), KEY)
    assert decoded.layout == lay and decoded.size == size and decoded.stack_pointer == sp
