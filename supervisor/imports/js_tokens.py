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

import re
from collections.abc import Iterator
from typing import Literal, NamedTuple

TokenKind = Literal["name", "punct", "string", "template", "regex", "number"]

# After these names a `/` starts a regular expression (`return /x/`), not a division.
_REGEX_AFTER_NAMES = frozenset({
    "return", "typeof", "instanceof", "in", "of", "new", "delete", "void", "throw", "case",
    "do", "else", "yield", "await",
})
# One token at a time by the regex engine (blanks and comments, a name, a number, a punctuator;
# the last alternative takes any one character), not a character at a time in Python; what
# needs context (strings, templates, regular expressions, braces) is read by the loop.
_TOKEN = re.compile(
    "(?P<blank>[ \t\r\n\f\v\u00a0\ufeff\u2028\u2029]+|//[^\n]*|/\\*(?:.*?\\*/|.*\\Z))"
    r"|(?P<name>[A-Za-z_$\\\x80-\U0010ffff][\w$\\\x80-\U0010ffff]*)"
    r"|(?P<number>(?:\d|\.\d)[\w$\\.\x80-\U0010ffff]*)"
    r"|(?P<punct>>>>=|===|!==|\*\*=|\.\.\.|<<=|>>=|>>>|&&=|\|\|=|\?\?="
    r"|=>|==|!=|<=|>=|&&|\|\||\?\?|\?\.|\+\+|--|\+=|-=|\*=|/=|%=|&=|\|=|\^=|<<|>>|\*\*|.)",
    re.DOTALL)
_STRING_STOP = {"'": re.compile(r"[\\'\n]"), '"': re.compile(r'[\\"\n]')}


class Token(NamedTuple):  # a tuple: made thousands of times a file
    kind: TokenKind
    text: str  # for a string: its value (simple escapes decoded); otherwise the source text


def _word_char(ch: str) -> bool:
    return ch.isalnum() or ch in "_$\\" or ord(ch) > 0x7F


def _skip_string(src: str, i: int, quote: str) -> tuple[int, str]:
    """The index after the closing quote, and the string's value (escapes of one character
    only: `\\n` is read as `n`; enough to compare with a name)."""
    out = []
    n = len(src)
    stop = _STRING_STOP[quote]
    i += 1
    while i < n:
        found = stop.search(src, i)
        if found is None:
            out.append(src[i:])
            return n, "".join(out)
        j = found.start()
        out.append(src[i:j])
        if src[j] == "\\":
            if j + 1 < n:
                out.append(src[j + 1])
            i = j + 2
            continue
        return j + 1, "".join(out)
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
    match = _TOKEN.match
    while i < n:
        found = match(src, i)
        if found is None:  # cannot happen: the last alternative takes any one character
            break
        kind = found.lastgroup
        i = found.end()
        if kind == "blank":
            continue
        text = found.group()
        if kind == "name":
            prev = Token("name", text)
            yield prev
            continue
        if kind == "number":
            prev = Token("number", text)
            yield prev
            continue
        if text == "'" or text == '"':
            i, value = _skip_string(src, i - 1, text)
            prev = Token("string", value)
            yield prev
            continue
        if text == "`" or (text == "}" and braces and braces[-1]):
            if text == "}":
                braces.pop()
            i, more = _template_part(src, i)
            prev = Token("template", "")
            yield prev
            if more:
                braces.append(True)
            continue
        if (text == "/" or text == "/=") and _regex_allowed(prev):
            i = _skip_regex(src, i - len(text))
            prev = Token("regex", "")
            yield prev
            continue
        if text == "{":
            braces.append(False)
        elif text == "}" and braces:
            braces.pop()
        prev = Token("punct", text)
        yield prev


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
