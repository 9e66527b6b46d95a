"""Reading a QuickJS string straight from the guest's memory, without calling into it.

A host call's name and arguments arrive as JSValues. Converting them with JS_ToCStringLen2
and JS_FreeCString costs two calls into the guest each, and a call into the guest from inside
a host callback costs several microseconds: more than the rest of a host call together. A flat
string (tag JS_TAG_STRING) is a `JSString`: a 32-bit reference count, a 32-bit word holding
its length (31 bits) and whether its characters are 16-bit (the top bit), more header words,
then the characters (Latin-1 bytes or UTF-16 code units). The header's size is a property of
the guest build, so it is not assumed: the first strings read the slow way are also searched
for in memory (`StringLayout.learn`), and the fast path is used only once the offset of the
characters is known. A rope, or anything unexpected, takes the slow path.
"""

from __future__ import annotations

import codecs
import ctypes
import struct
from dataclasses import dataclass, field

_LENGTH_MASK = 0x7FFFFFFF
_u32 = struct.Struct("<I").unpack_from
# Where the characters may start: after the two words always there, within a few more.
_CANDIDATE_OFFSETS = range(8, 48, 4)
# Strings whose characters must all match before an offset is trusted (the first may be a
# one-letter name that matches by chance).
_PROBES_NEEDED = 2


@dataclass
class StringLayout:
    """Where a flat string's characters start; learnt once per process (one guest build)."""

    data_offset: int | None = None
    _seen: dict[int, int] = field(default_factory=dict)  # offset -> probes it matched
    _probes: int = 0

    def learn(self, base: int, pointer: int, text: bytes) -> None:
        """`text` (UTF-8) was read the slow way from the string at `pointer`: find where its
        characters sit, if it is plain ASCII (the same bytes in Latin-1)."""
        if self.data_offset is not None or not text or not text.isascii() or len(text) < 3:
            return
        header = int.from_bytes(ctypes.string_at(base + pointer + 4, 4), "little")
        if header != len(text):  # 8-bit characters, and the length it claims
            return
        matches = [off for off in _CANDIDATE_OFFSETS
                   if ctypes.string_at(base + pointer + off, len(text) + 1) == text + b"\0"]
        self._probes += 1
        for off in matches:
            self._seen[off] = self._seen.get(off, 0) + 1
        agreed = [off for off, n in self._seen.items() if n == self._probes]
        if self._probes >= _PROBES_NEEDED and len(agreed) == 1:
            self.data_offset = agreed[0]

    def read(self, view: memoryview, pointer: int) -> str | None:
        """The string at `pointer`, read through `view` (the guest's memory from address 0);
        None if the layout is not known yet or the string does not lie inside the view."""
        off = self.data_offset
        if off is None or pointer + off > len(view):
            return None
        header = _u32(view, pointer + 4)[0]
        wide = header >> 31
        start = pointer + off
        end = start + ((header & _LENGTH_MASK) << wide)
        if end > len(view):  # never read past the guest's memory
            return None
        if wide:
            return codecs.utf_16_le_decode(view[start:end], "surrogatepass")[0]
        return codecs.latin_1_decode(view[start:end])[0]

STRINGS = StringLayout()
