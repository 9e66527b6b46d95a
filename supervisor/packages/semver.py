"""Semantic versions (semver 2.0.0) and the node-semver ranges package.json dependencies use.

A range is desugared into comparator sets, as node-semver does: `^1.2.3` is `>=1.2.3 <2.0.0-0`,
`~1.2` is `>=1.2.0 <1.3.0-0`, `1.x` is `>=1.0.0 <2.0.0-0`, `1.2.3 - 2` is `>=1.2.3 <3.0.0-0`;
sets are joined by `||`. A prerelease version satisfies a set only when one of the set's
comparators names a prerelease of the same major.minor.patch (node-semver's default), so
`^1.2.3` never picks `1.3.0-beta`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

from supervisor.errors import ValidationError

_NUM = r"0|[1-9]\d*"
_IDENT = r"[0-9A-Za-z-]+"
_VERSION = re.compile(
    rf"^v?(?P<major>{_NUM})\.(?P<minor>{_NUM})\.(?P<patch>{_NUM})"
    rf"(?:-(?P<pre>{_IDENT}(?:\.{_IDENT})*))?(?:\+(?P<build>{_IDENT}(?:\.{_IDENT})*))?$")
# A version in a range may be partial (`1`, `1.2`) or have wildcards (`1.x`, `1.2.*`).
_PARTIAL = re.compile(
    rf"^v?(?P<major>{_NUM}|[xX*])(?:\.(?P<minor>{_NUM}|[xX*])(?:\.(?P<patch>{_NUM}|[xX*])"
    rf"(?:-(?P<pre>{_IDENT}(?:\.{_IDENT})*))?(?:\+{_IDENT}(?:\.{_IDENT})*)?)?)?$")
_OPERATOR = re.compile(r"^(<=|>=|<|>|=|\^|~>|~)?\s*(.*)$", re.S)
MAX_RANGE_LENGTH = 1024
# Numbers of a version beyond JavaScript's safe integers are refused, as node-semver does.
MAX_NUMBER = 2**53 - 1


@total_ordering
@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    prerelease: tuple[int | str, ...] = ()

    def __str__(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return core + ("-" + ".".join(str(p) for p in self.prerelease) if self.prerelease else "")

    @property
    def release(self) -> tuple[int, int, int]:
        return self.major, self.minor, self.patch

    def _key(self) -> tuple[tuple[int, int, int], int, tuple[tuple[int, int | str], ...]]:
        # A release sorts after its prereleases; numeric identifiers before alphanumeric ones,
        # and a shorter list of identifiers first when it is a prefix of the longer (semver §11).
        pre = tuple((0, p) if isinstance(p, int) else (1, p) for p in self.prerelease)
        return self.release, 0 if self.prerelease else 1, pre

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()


def _number(text: str) -> int:
    value = int(text)
    if value > MAX_NUMBER:
        raise ValueError("too large")
    return value


def _prerelease(text: str | None) -> tuple[int | str, ...]:
    if not text:
        return ()
    return tuple(_number(p) if p.isdigit() and (p == "0" or not p.startswith("0")) else p
                 for p in text.split("."))


def parse_version(text: str) -> Version:
    """An exact semver version (`1.2.3`, `1.0.0-beta.2`, build metadata ignored); else
    ValidationError."""
    match = _VERSION.match(text.strip()) if isinstance(text, str) and len(text) <= 256 else None
    if match is None:
        raise ValidationError(f"{text!r} is not a semver version (like 1.2.3)", version=str(text)[:256])
    try:
        return Version(_number(match["major"]), _number(match["minor"]), _number(match["patch"]),
                       _prerelease(match["pre"]))
    except ValueError:
        raise ValidationError(f"{text!r}: a version number is too large", version=text) from None


def is_version(text: str) -> bool:
    try:
        parse_version(text)
    except ValidationError:
        return False
    return True


# ----- ranges ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparator:
    op: str  # one of < <= > >= =
    version: Version

    def test(self, v: Version) -> bool:
        if self.op == "<":
            return v < self.version
        if self.op == "<=":
            return v <= self.version
        if self.op == ">":
            return v > self.version
        if self.op == ">=":
            return v >= self.version
        return v == self.version


ComparatorSet = tuple[Comparator, ...]
_NOTHING: ComparatorSet = (Comparator("<", Version(0, 0, 0, (0,))),)
_ANY: ComparatorSet = (Comparator(">=", Version(0, 0, 0)),)


@dataclass(frozen=True)
class _Partial:
    """A version of a range, possibly with parts missing (None: `x`, `*` or absent)."""

    major: int | None
    minor: int | None
    patch: int | None
    prerelease: tuple[int | str, ...]

    def floor(self) -> Version:
        return Version(self.major or 0, self.minor or 0, self.patch or 0, self.prerelease)


def _partial(text: str, whole: str) -> _Partial:
    match = _PARTIAL.match(text)
    if match is None:
        raise ValidationError(f"{whole!r} is not a semver range: {text!r} is not a version",
                              range=whole[:256])

    def part(name: str) -> int | None:
        value = match[name]
        return None if value is None or value in ("x", "X", "*") else _number(value)

    try:
        major, minor, patch = part("major"), part("minor"), part("patch")
        pre = _prerelease(match["pre"])
    except ValueError:
        raise ValidationError(f"{whole!r}: a version number is too large", range=whole[:256]) from None
    # Parts after a wildcard are wildcards (`1.x.3` is `1.x`).
    if major is None:
        minor = patch = None
    if minor is None:
        patch = None
    return _Partial(major, minor, patch, pre if patch is not None else ())


def _upper(p: _Partial) -> Version:
    """The first version past a partial one: `1` → 2.0.0-0, `1.2` → 1.3.0-0."""
    if p.minor is None:
        return Version((p.major or 0) + 1, 0, 0, (0,))
    return Version(p.major or 0, p.minor + 1, 0, (0,))


def _tilde(p: _Partial) -> ComparatorSet:
    if p.major is None:
        return _ANY
    high = Version(p.major + 1, 0, 0, (0,)) if p.minor is None else Version(p.major, p.minor + 1, 0, (0,))
    return Comparator(">=", p.floor()), Comparator("<", high)


def _caret(p: _Partial) -> ComparatorSet:
    if p.major is None:
        return _ANY
    if p.major > 0 or p.minor is None:
        high = Version(p.major + 1, 0, 0, (0,))
    elif p.minor > 0 or p.patch is None:
        high = Version(0, p.minor + 1, 0, (0,))
    else:
        high = Version(0, 0, p.patch + 1, (0,))
    return Comparator(">=", p.floor()), Comparator("<", high)


def _primitive(op: str, p: _Partial) -> ComparatorSet:
    full = p.patch is not None
    if op in ("", "="):
        if full:
            return (Comparator("=", p.floor()),)
        if p.major is None:
            return _ANY
        return Comparator(">=", p.floor()), Comparator("<", _upper(p))
    if p.major is None:  # `>*` and `<*` match nothing, `>=*` and `<=*` anything
        return _ANY if op in (">=", "<=") else _NOTHING
    if full:
        return (Comparator(op, p.floor()),)
    if op == ">":
        return (Comparator(">=", _upper(p)),)
    if op == ">=":
        return (Comparator(">=", p.floor()),)
    if op == "<":
        return (Comparator("<", Version(*p.floor().release, (0,))),)
    return (Comparator("<", _upper(p)),)  # <=1.2 is <1.3.0-0


def _comparator(token: str, whole: str) -> ComparatorSet:
    match = _OPERATOR.match(token)
    assert match is not None  # the pattern matches every string
    op, rest = match[1] or "", match[2]
    p = _partial(rest, whole)
    if op in ("~", "~>"):
        return _tilde(p)
    if op == "^":
        return _caret(p)
    return _primitive(op, p)


def _hyphen(low_text: str, high_text: str, whole: str) -> ComparatorSet:
    low, high = _partial(low_text, whole), _partial(high_text, whole)
    lower = () if low.major is None else (Comparator(">=", low.floor()),)
    if high.major is None:
        upper: ComparatorSet = ()
    elif high.patch is None:
        upper = (Comparator("<", _upper(high)),)
    else:
        upper = (Comparator("<=", high.floor()),)
    return (lower + upper) or _ANY


_SPACE_AFTER_OPERATOR = re.compile(r"(<=|>=|<|>|=|\^|~>|~)\s+")
_HYPHEN = re.compile(r"^(\S+)\s+-\s+(\S+)$")


def _comparator_set(text: str, whole: str) -> ComparatorSet:
    text = _SPACE_AFTER_OPERATOR.sub(r"\1", text.strip())
    if text == "":
        return _ANY
    hyphen = _HYPHEN.match(text)
    if hyphen:
        return _hyphen(hyphen[1], hyphen[2], whole)
    out: ComparatorSet = ()
    for token in text.split():
        out += _comparator(token, whole)
    return out


@dataclass(frozen=True)
class Range:
    text: str
    sets: tuple[ComparatorSet, ...]

    def test(self, v: Version) -> bool:
        return any(_set_allows(s, v) for s in self.sets)

    def best(self, versions: list[Version]) -> Version | None:
        """The highest of `versions` in the range."""
        matching = [v for v in versions if self.test(v)]
        return max(matching) if matching else None


def _set_allows(comparators: ComparatorSet, v: Version) -> bool:
    if not all(c.test(v) for c in comparators):
        return False
    if not v.prerelease:
        return True
    # A bound like `<2.0.0-0` names a prerelease of 2.0.0 but lets none of them through (0 is
    # the lowest prerelease there is), so the plain rule is node-semver's.
    return any(c.version.prerelease and c.version.release == v.release for c in comparators)


def parse_range(text: str) -> Range:
    """A node-semver range (exact, ^, ~, comparisons, x-ranges, `*` or empty, hyphen ranges,
    `||`); ValidationError for anything else (a URL, a git or file dependency, a dist-tag)."""
    if not isinstance(text, str) or len(text) > MAX_RANGE_LENGTH:
        raise ValidationError("a semver range must be a string of at most "
                              f"{MAX_RANGE_LENGTH} characters", range=str(text)[:256])
    return Range(text, tuple(_comparator_set(part, text) for part in text.split("||")))


def satisfies(version: Version | str, range_text: str) -> bool:
    v = version if isinstance(version, Version) else parse_version(version)
    return parse_range(range_text).test(v)
