"""Text that is not Unicode: a Python str can hold a lone surrogate (a JSON `\\ud800` escape or a
JavaScript string makes one), which UTF-8, SQLite and the file system cannot encode. The one
test for it, and how such text is shown in a message."""

from __future__ import annotations


def holds_lone_surrogate(text: str) -> bool:
    if text.isascii():  # the common case, decided at C speed
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def shown(text: str) -> str:
    """`text` for a message: a lone surrogate as its escape (`\\ud800`), the rest as it is."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
