"""JSON in and out of the API. Out: store records as the JSON the API returns (RFC 3339 UTC
times with microseconds, lists as lists, never null; the field names of docs/api.md), always strict
JSON. In: `check_body`, the one check every request body passes before it is decoded."""

from __future__ import annotations

import json
from dataclasses import fields, is_dataclass
from datetime import datetime
from typing import Any

from starlette.responses import Response

from supervisor import MAX_JSON_DEPTH, Session, TemplateDetail
from supervisor.adapters.api_time import api_time
from supervisor.unicode_text import holds_lone_surrogate, shown

_SCALARS = (str, int, float, bool, type(None))


def record(value: Any) -> Any:
    """A record (dataclass), list or dict, with datetimes as RFC 3339 strings.

    Iterative, not recursive: stored JSON nests as deep as the store allows, and a walk that
    recursed once per level would fail on a deep value and make its row unservable."""
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any]] = [(value, root, 0)]
    while stack:
        node, target, key = stack.pop()
        if isinstance(node, datetime):
            target[key] = api_time(node)
            continue
        if is_dataclass(node) and not isinstance(node, type):
            items: Any = [(f.name, getattr(node, f.name)) for f in fields(node) if f.name != "data"]
            converted: Any = {}
        elif isinstance(node, dict):
            items, converted = node.items(), {}
        elif isinstance(node, list | tuple):
            items, converted = enumerate(node), [None] * len(node)
        else:
            target[key] = node
            continue
        target[key] = converted
        for k, v in items:
            # Set every key now (containers filled in later keep their place in the order).
            converted[k] = v
            if not isinstance(v, _SCALARS):
                stack.append((v, converted, k))
    return root[0]


def template_detail(detail: TemplateDetail) -> dict[str, Any]:
    return {
        "template": record(detail.template),
        "settings": record(detail.settings),
        "capabilities": record(detail.capabilities),
        "startup_files": record(detail.startup_files),
        "modules": record(detail.modules),
        "libraries": record(detail.libraries),
    }


def session(value: Session) -> dict[str, Any]:
    out = record(value)
    out.pop("settings", None)  # internal: what was captured at spawn (its grants hold secrets)
    return out


# The response encoder: ASCII (a lone surrogate a script produced goes out as a \u escape,
# never as bytes that are not UTF-8) and strict (NaN/Infinity raise instead of going out as
# text no JSON parser accepts).
_ENCODER = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(",", ":"))


def dumps(content: Any) -> str:
    """Every JSON the API sends (responses, event-stream data) goes through here."""
    return _ENCODER.encode(content)


class JSONBody(Response):
    """A JSON response built without a response-model round trip (the hot path)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content).encode()


# ----- request bodies ---------------------------------------------------------------------------


class BodyProblem(Exception):
    """Why a request body is refused (400 INVALID_REQUEST): a message and its details."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


def _finite_float(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):  # 1e999: a float too large, inf in Python
        raise BodyProblem(f"the number {text[:40]} is out of range: JSON numbers are finite",
                          number=text[:40])
    return number


def _no_constant(name: str) -> Any:
    raise BodyProblem(f"{name} is not JSON (JSON numbers are finite)", constant=name)


_STRICT = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite_float)


def check_body(raw: bytes) -> None:
    """Refuse (BodyProblem) a body that is not strict JSON: not UTF-8, not JSON, NaN or
    Infinity or a number overflowing to infinity, nested deeper than MAX_JSON_DEPTH, or with
    a string (key or value) holding a lone surrogate (`"\\ud800"`: not Unicode text, it
    could not be stored). An empty body passes: the route's model says it is missing.

    Runs before FastAPI decodes the body, so no decoder ever recurses into a deep body."""
    if not raw.strip():
        return
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyProblem(f"the request body is not valid UTF-8 (byte {exc.start})",
                          position=exc.start) from None
    try:
        value = _STRICT.decode(text)
    except RecursionError:
        raise BodyProblem(f"the request body is nested deeper than {MAX_JSON_DEPTH} levels",
                          max_depth=MAX_JSON_DEPTH) from None
    except json.JSONDecodeError as exc:
        raise BodyProblem("the request body is not valid JSON", problem=exc.msg, position=exc.pos) from None
    except ValueError as exc:  # an integer of more digits than Python converts
        raise BodyProblem("the request body is not valid JSON", problem=str(exc)[:120]) from None
    # Text without these cannot hold what the walk looks for (lone surrogates only come from
    # \u escapes: the UTF-8 decoder refuses encoded ones): most bodies skip it.
    deep = text.count("[") + text.count("{") > MAX_JSON_DEPTH
    if not deep and "\\u" not in text:
        return
    stack: list[tuple[Any, int, str]] = [(value, 0, "")]
    while stack:
        node, depth, path = stack.pop()
        if isinstance(node, str):
            if holds_lone_surrogate(node):
                field = shown(path) or "body"
                raise BodyProblem(f"{field}: a lone surrogate (an unpaired \\ud800-\\udfff escape) "
                                  "is not Unicode text", field=field)
            continue
        if isinstance(node, dict):
            children: Any = node.items()
        elif isinstance(node, list):
            children = ((str(i), v) for i, v in enumerate(node))
        else:
            continue
        if depth + 1 > MAX_JSON_DEPTH:
            raise BodyProblem(f"the request body is nested deeper than {MAX_JSON_DEPTH} levels",
                              max_depth=MAX_JSON_DEPTH, field=shown(path) or "body")
        for key, child in children:
            child_path = f"{path}.{key}" if path else key
            if holds_lone_surrogate(key):
                field = shown(child_path)
                raise BodyProblem(f"{field}: a lone surrogate (an unpaired \\ud800-\\udfff escape) "
                                  "is not Unicode text", field=field)
            stack.append((child, depth + 1, child_path))
