"""A small JavaScript tokenizer: enough to tell an ES module from a script and to find a
CommonJS file's export names, without being fooled by strings, comments, templates or regular
expressions that merely contain `import` or `exports.x =`.

It is not a parser. Its one guess is the classic one: whether a `/` starts a regular expression
or is a division depends on the token before it (after `)` and `]`, a name or a number it divides;
after `}` and anything else it starts a regex). Code that defeats the guess (`if (x) /re/.test(y)`)
may be misread from there on; what that costs is a wrong guess about the module's kind or a
missing named export, never a read outside the file: the file is only ever run by the engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

TokenKind = Literal["name", "punct", "string", "template", "regex", "number"]

# After these names a `/` starts a regular expression (`return /x/`), not a division.
_REGEX_AFTER_NAMES = frozenset({
    "return", "typeof", "instanceof", "in", "of", "new", "delete", "void", "throw", "case",
    "do", "else", "yield", "await",
})
_PUNCT3 = ("===", "!==", "**=", "...", "<<=", ">>=", ">>>", "&&=", "||=", "??=")
_PUNCT2 = ("=>", "==", "!=", "<=", ">=", "&&", "||", "??", "?.", "++", "--", "+=", "-=", "*=",
           "/=", "%=", "&=", "|=", "^=", "<<", ">>", "**")
_WORD_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_$\\")


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str  # for a string: its value (simple escapes decoded); otherwise the source text


def _word_char(ch: str) -> bool:
    return ch.isalnum() or ch in "_$\\" or ord(ch) > 0x7F


def _skip_string(src: str, i: int, quote: str) -> tuple[int, str]:
    """The index after the closing quote, and the string's value (escapes of one character
    only: `\\n` is read as `n`; enough to compare with a name)."""
    out = []
    n = len(src)
    i += 1
    while i < n:
        ch = src[i]
        if ch == "\\":
            if i + 1 < n:
                out.append(src[i + 1])
            i += 2
            continue
        if ch == quote or ch == "\n":
            return i + 1, "".join(out)
        out.append(ch)
        i += 1
    return n, "".join(out)


def _skip_regex(src: str, i: int) -> int:
    n = len(src)
    i += 1
    in_class = False
    while i < n:
        ch = src[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "\n":
            return i
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "/":
            i += 1
            while i < n and _word_char(src[i]):
                i += 1
            return i
        i += 1
    return n


def tokens(src: str) -> Iterator[Token]:
    """The significant tokens of `src` (comments and whitespace dropped). A template literal is
    one `template` token for its text; the expressions in its `${...}` are tokenized as code."""
    n = len(src)
    i = 0
    if src.startswith("#!"):
        i = src.find("\n")
        i = n if i < 0 else i
    prev: Token | None = None
    # One entry per open `{`: True when it is a template's `${`, whose `}` resumes the template.
    braces: list[bool] = []
    resume_template = False
    while i < n or resume_template:
        if resume_template:
            resume_template = False
            i, more = _template_part(src, i)
            prev = Token("template", "")
            yield prev
            if more:
                braces.append(True)
            continue
        after_blank = _skip_blank(src, i)
        if after_blank != i:
            i = after_blank
            continue
        ch = src[i]
        if ch in "'\"":
            i, value = _skip_string(src, i, ch)
            prev = Token("string", value)
            yield prev
            continue
        if ch == "`":
            i, more = _template_part(src, i + 1)
            prev = Token("template", "")
            yield prev
            if more:
                braces.append(True)
            continue
        word = _word(src, i)
        if word is not None:
            i, prev = word
            yield prev
            continue
        if ch == "/" and _regex_allowed(prev):
            i = _skip_regex(src, i)
            prev = Token("regex", "")
            yield prev
            continue
        if ch == "{":
            braces.append(False)
        elif ch == "}" and braces and braces.pop():
            i += 1
            resume_template = True
            continue
        text = next((p for p in _PUNCT3 if src.startswith(p, i)), None) or \
            next((p for p in _PUNCT2 if src.startswith(p, i)), None) or ch
        if text == ">>>" and src.startswith(">>>=", i):
            text = ">>>="
        i += len(text)
        prev = Token("punct", text)
        yield prev


def _skip_blank(src: str, i: int) -> int:
    """The index after the whitespace or comment at i (i itself if there is none)."""
    n = len(src)
    if src[i] in " \t\r\n\f\v\u00a0\ufeff\u2028\u2029":
        return i + 1
    if src.startswith("//", i):
        end = src.find("\n", i)
        return n if end < 0 else end
    if src.startswith("/*", i):
        end = src.find("*/", i + 2)
        return n if end < 0 else end + 2
    return i


def _word(src: str, i: int) -> tuple[int, Token] | None:
    """A name or a number at i: (the index after it, its token)."""
    n = len(src)
    ch = src[i]
    start = i
    if ch in _WORD_START or ord(ch) > 0x7F:
        while i < n and _word_char(src[i]):
            i += 1
        return max(i, start + 1), Token("name", src[start:max(i, start + 1)])
    if ch.isdigit() or (ch == "." and i + 1 < n and src[i + 1].isdigit()):
        while i < n and (_word_char(src[i]) or src[i] == "."):
            i += 1
        return i, Token("number", src[start:i])
    return None


def _template_part(src: str, i: int) -> tuple[int, bool]:
    """From inside a template's text: the index after its closing backtick, or after a `${`
    (then True: an expression follows)."""
    n = len(src)
    while i < n:
        ch = src[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "`":
            return i + 1, False
        if ch == "$" and i + 1 < n and src[i + 1] == "{":
            return i + 2, True
        i += 1
    return n, False


def _regex_allowed(prev: Token | None) -> bool:
    if prev is None:
        return True
    if prev.kind == "name":
        return prev.text in _REGEX_AFTER_NAMES
    if prev.kind in ("number", "string", "template", "regex"):
        return False
    return prev.text not in (")", "]")
