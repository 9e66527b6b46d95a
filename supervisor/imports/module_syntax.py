"""What a JavaScript file's text says about it, read with `js_tokens`: whether it uses ES module
syntax, and which names a CommonJS file exports where that can be seen without running it.

ES module syntax is a static `import` (not `import(...)`) or an `export` at the top level, or
`import.meta` anywhere. Top-level `await` alone does not count.

CommonJS export names are found in these shapes only (as Node's cjs-module-lexer does, in part):
`exports.x =`, `exports["x"] =`, `module.exports.x =`, `module.exports = { a, b: ..., c() {} }`,
`Object.defineProperty(exports, "x", ...)` (also on `module.exports`). Names made any other way
(a loop, `Object.assign`, `module.exports = require(...)`, a computed key) are not seen: they
are still properties of the default export, just not named exports.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict

from supervisor.imports.js_tokens import Token, tokens

_OPEN = frozenset("([{")
_CLOSE = frozenset(")]}")
_MAX_TOKENS = 2_000_000  # a file this long is read no further for names
# Without one of these words a file cannot use module syntax: most scripts are answered without
# tokenizing them (the tokenizer reads about a microsecond a character).
_KEYWORD = re.compile(r"(?<![\w$])(?:import|export)(?![\w$])")


# What was found for a text seen before, by its sha256: a file run again and again (run-file in a
# session, every session's imports of it) is tokenized once.
_SEEN: OrderedDict[bytes, bool] = OrderedDict()
_SEEN_LOCK = threading.Lock()
_SEEN_MAX = 1024


def uses_module_syntax(src: str) -> bool:
    if _KEYWORD.search(src) is None:
        return False
    key = hashlib.sha256(src.encode("utf-8", "surrogatepass")).digest()
    with _SEEN_LOCK:
        known = _SEEN.get(key)
        if known is not None:
            _SEEN.move_to_end(key)
            return known
    found = _scan_module_syntax(src)
    with _SEEN_LOCK:
        _SEEN[key] = found
        while len(_SEEN) > _SEEN_MAX:
            _SEEN.popitem(last=False)
    return found


def _scan_module_syntax(src: str) -> bool:
    toks = list(tokens(src))
    depth = 0
    for i, tok in enumerate(toks):
        if tok.kind == "punct":
            if tok.text in _OPEN:
                depth += 1
            elif tok.text in _CLOSE:
                depth = max(0, depth - 1)
            continue
        if tok.kind != "name" or tok.text not in ("import", "export"):
            continue
        before = toks[i - 1] if i else None
        if before is not None and before.kind == "punct" and before.text in (".", "?."):
            continue  # a property: `x.import`
        after = toks[i + 1] if i + 1 < len(toks) else None
        if tok.text == "import":
            if _is(after, ".") and _is_name(toks[i + 2] if i + 2 < len(toks) else None, "meta"):
                return True
            if depth == 0 and after is not None and not _is(after, "(") and not _is(after, "."):
                return True
        elif depth == 0:
            return True
    return False


def commonjs_exports(src: str) -> list[str]:
    """The export names visible in a CommonJS file, in the order first seen, without
    `default` and `__esModule`."""
    toks: list[Token] = []
    for tok in tokens(src):
        toks.append(tok)
        if len(toks) >= _MAX_TOKENS:
            break
    found: dict[str, None] = {}
    n = len(toks)
    for i in range(n):
        tok = toks[i]
        if tok.kind != "name":
            continue
        before = toks[i - 1] if i else None
        if before is not None and before.kind == "punct" and before.text in (".", "?."):
            continue
        j = _exports_target(toks, i)
        if j is not None:
            # exports.x = / exports["x"] =
            name, k = _member(toks, j)
            if name is not None and _is(_at(toks, k), "="):
                found.setdefault(name)
            elif name is None and tok.text == "module" and _is(_at(toks, j), "=") \
                    and _is(_at(toks, j + 1), "{"):
                for key in _object_keys(toks, j + 2):
                    found.setdefault(key)
            continue
        if tok.text == "Object" and _is(_at(toks, i + 1), ".") \
                and _is_name(_at(toks, i + 2), "defineProperty") and _is(_at(toks, i + 3), "("):
            j = _exports_target(toks, i + 4)
            if j is not None and _is(_at(toks, j), ","):
                target = _at(toks, j + 1)
                if target is not None and target.kind == "string" and _is(_at(toks, j + 2), ","):
                    found.setdefault(target.text)
    return [name for name in found if name not in ("default", "__esModule")]


def _at(toks: list[Token], i: int) -> Token | None:
    return toks[i] if 0 <= i < len(toks) else None


def _is(tok: Token | None, text: str) -> bool:
    return tok is not None and tok.kind == "punct" and tok.text == text


def _is_name(tok: Token | None, text: str) -> bool:
    return tok is not None and tok.kind == "name" and tok.text == text


def _exports_target(toks: list[Token], i: int) -> int | None:
    """If `exports` or `module.exports` starts at i: the index after it."""
    if _is_name(_at(toks, i), "exports"):
        return i + 1
    if _is_name(_at(toks, i), "module") and _is(_at(toks, i + 1), ".") \
            and _is_name(_at(toks, i + 2), "exports"):
        return i + 3
    return None


def _member(toks: list[Token], j: int) -> tuple[str | None, int]:
    """`.x` or `["x"]` at j: (the name, the index after it); (None, j) otherwise."""
    if _is(_at(toks, j), "."):
        name = _at(toks, j + 1)
        if name is not None and name.kind == "name":
            return name.text, j + 2
    if _is(_at(toks, j), "["):
        key = _at(toks, j + 1)
        if key is not None and key.kind == "string" and _is(_at(toks, j + 2), "]"):
            return key.text, j + 3
    return None, j


def _object_keys(toks: list[Token], i: int) -> list[str]:
    """The keys of an object literal whose `{` is just before i, up to its `}`."""
    keys: list[str] = []
    n = len(toks)
    while i < n:
        tok = toks[i]
        if _is(tok, "}"):
            return keys
        if _is(tok, "..."):
            i = _skip_value(toks, i + 1)
        elif tok.kind in ("name", "string"):
            after = _at(toks, i + 1)
            if tok.kind == "name" and tok.text in ("get", "set", "async") \
                    and after is not None and after.kind in ("name", "string"):
                tok, after, i = after, _at(toks, i + 2), i + 1
            if _is(after, ",") or _is(after, "}") or _is(after, ":") or _is(after, "("):
                keys.append(tok.text)
            i = _skip_value(toks, i + 1)
        else:
            return keys  # a computed key, a number: stop reading rather than guess
        if _is(_at(toks, i), ","):
            i += 1
    return keys


def _skip_value(toks: list[Token], i: int) -> int:
    """From i, the index of the `,` or `}` that ends the current property (brackets balanced)."""
    depth = 0
    n = len(toks)
    while i < n:
        tok = toks[i]
        if tok.kind == "punct":
            if tok.text in _OPEN:
                depth += 1
            elif tok.text in _CLOSE:
                if depth == 0:
                    return i
                depth -= 1
            elif tok.text == "," and depth == 0:
                return i
        i += 1
    return n
