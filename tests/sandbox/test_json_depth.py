"""The depth of a host function's result is judged on its JSON text (sandbox.json_depth):
it must agree with the walk of the value, whatever the strings hold."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.json_depth import JSON_MAX_DEPTH, check_depth, text_too_deep, too_deep

# Strings full of what could fool a scan: brackets, quotes, backslashes, escapes.
TEXT = st.text(alphabet=st.sampled_from(list('[]{}"\\\\ab\u2028\x00é')), max_size=12)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | TEXT


def _nest(value: Any, depth: int) -> Any:
    for _ in range(depth):
        value = [value]
    return value


def _walk_says_too_deep(value: Any) -> bool:
    try:
        check_depth(value)
    except ValueError:
        return True
    return False


@settings(max_examples=300, deadline=None)
@given(value=st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(TEXT, inner, max_size=4), max_leaves=30),
       extra=st.integers(min_value=0, max_value=JSON_MAX_DEPTH + 3))
def test_the_text_and_the_walk_agree(value: Any, extra: int) -> None:
    deep = _nest(value, extra)
    text = json.dumps(deep, ensure_ascii=False)
    assert text_too_deep(text) == _walk_says_too_deep(deep)
    if isinstance(deep, (list, dict)):
        assert too_deep(deep, text) == _walk_says_too_deep(deep)


def test_the_limit_is_exact() -> None:
    assert not text_too_deep(json.dumps(_nest(1, JSON_MAX_DEPTH)))
    assert text_too_deep(json.dumps(_nest(1, JSON_MAX_DEPTH + 1)))
    assert text_too_deep(json.dumps(_nest({"a": "[" * 100}, JSON_MAX_DEPTH)))
    assert not text_too_deep(json.dumps([{"k": "{[" * 100}] * 1000))
