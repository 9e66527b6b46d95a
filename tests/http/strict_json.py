"""Helpers of the hardening tests: a strict JSON parser for what the daemon sends, and the
read routes of a session that must keep answering whatever was sent to it."""

from __future__ import annotations

import json
from typing import Any

import httpx
from http_daemon import check_response


class NotStrictJSON(AssertionError):
    pass


def _refuse_constant(name: str) -> Any:
    raise NotStrictJSON(f"{name} is not JSON")


def _refuse_infinite(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise NotStrictJSON(f"{text} overflows to infinity")
    return number


def strict_loads(text: str | bytes) -> Any:
    """json.loads that refuses NaN, Infinity and numbers overflowing to infinity (Python's
    default accepts them), and bytes that are not UTF-8."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")  # strict: raises on anything that is not UTF-8
    return json.loads(text, parse_constant=_refuse_constant, parse_float=_refuse_infinite)


def check_strict(response: httpx.Response) -> None:
    """Every JSON response body parses with the strict parser (event streams are parsed by
    the tests that read them)."""
    if response.headers.get("content-type", "").startswith("application/json"):
        response.read()
        strict_loads(response.content)


def strict_client(base_url: str, **kwargs: Any) -> httpx.Client:
    """http_daemon's checked client, plus the strict parse of every JSON body it receives."""
    kwargs.setdefault("timeout", 60.0)
    return httpx.Client(base_url=base_url, event_hooks={"response": [check_response, check_strict]},
                        **kwargs)


def nested_list(depth: int, leaf: str = "1") -> str:
    """`[[[1]]]` with `depth` brackets, as raw JSON text (any depth: no recursive encoder)."""
    return "[" * depth + leaf + "]" * depth


def read_all(client: httpx.Client, session_id: str, walk: int | None = None) -> list[dict[str, Any]]:
    """Every read route of a session answers 200 with strict JSON: the session, its executions,
    each execution (the newest `walk` of them), its events and its event stream. Returns the
    executions."""
    r = client.get(f"/sessions/{session_id}")
    assert r.status_code == 200, r.text
    r = client.get("/executions", params={"session_id": session_id, "limit": 1000})
    assert r.status_code == 200, r.text
    executions = strict_loads(r.content)
    for execution in executions[:walk]:
        r = client.get(f"/executions/{execution['id']}")
        assert r.status_code == 200, r.text
        r = client.get(f"/executions/{execution['id']}/events")
        assert r.status_code == 200, r.text
        events = strict_loads(r.content)
        if execution["status"] != "running":
            with client.stream("GET", f"/executions/{execution['id']}/events/stream") as stream:
                assert stream.status_code == 200
                streamed = sse_strict(stream)
            assert streamed == events
    return executions


def sse_strict(response: httpx.Response) -> list[Any]:
    """The data of each event of a stream, parsed strictly."""
    out = []
    for line in response.iter_lines():
        if line.startswith("data:"):
            out.append(strict_loads(line[5:].strip()))
    return out
