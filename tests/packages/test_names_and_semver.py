"""Package names, library specs (the Go catalog's `name-version` form included) and node-semver
ranges, with property tests of version ordering."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.errors import ValidationError
from supervisor.packages import LibrarySpec, parse_spec
from supervisor.packages.names import check_package_name
from supervisor.packages.semver import Version, parse_range, parse_version, satisfies


@pytest.mark.parametrize(("spec", "name", "version"), [
    ("lodash@4.17.21", "lodash", "4.17.21"),
    ("lodash", "lodash", None),
    ("@types/node@20.1.0", "@types/node", "20.1.0"),
    ("@scope/pkg", "@scope/pkg", None),
    ("lodash-4.17.21", "lodash", "4.17.21"),
    ("moment-2.29.4", "moment", "2.29.4"),
    ("ramda-0.29.0", "ramda", "0.29.0"),
    ("dayjs-1.11.10", "dayjs", "1.11.10"),
    ("left-pad-1.3.0", "left-pad", "1.3.0"),
    ("left-pad", "left-pad", None),
    ("x@1.0.0-beta.1", "x", "1.0.0-beta.1"),
])
def test_specs(spec: str, name: str, version: str | None) -> None:
    assert parse_spec(spec) == LibrarySpec(name, version)


@pytest.mark.parametrize("spec", [
    "", " ", "Lodash@1.0.0", "../x@1.0.0", "a/b@1.0.0", ".hidden@1.0.0", "_under@1.0.0",
    "lodash@", "lodash@^4.0.0", "lodash@latest", "lodash@1.0", "@scope@1.0.0", "@/x@1.0.0",
    "x" * 215, "node_modules", "a b", "a@b@1.0.0", "/etc/passwd", "lo%dash", 42, None,
])
def test_bad_specs_are_validation_errors(spec: object) -> None:
    with pytest.raises(ValidationError):
        parse_spec(spec)


def test_name_rules() -> None:
    assert check_package_name("a" * 214) == "a" * 214
    with pytest.raises(ValidationError, match="lowercase"):
        check_package_name("JSONStream")


@pytest.mark.parametrize(("range_text", "version", "expected"), [
    ("4.17.21", "4.17.21", True), ("=4.17.21", "4.17.22", False),
    ("^1.2.3", "1.9.9", True), ("^1.2.3", "2.0.0", False), ("^1.2.3", "1.2.2", False),
    ("^0.2.3", "0.2.9", True), ("^0.2.3", "0.3.0", False), ("^0.0.3", "0.0.4", False),
    ("^1.x", "1.5.0", True), ("^0.x", "0.9.0", True), ("^0.0.x", "0.0.9", True), ("^0.0.x", "0.1.0", False),
    ("~1.2.3", "1.2.9", True), ("~1.2.3", "1.3.0", False), ("~1", "1.9.0", True), ("~1", "2.0.0", False),
    (">=1.2.7", "1.2.7", True), (">1.2.7", "1.2.7", False), ("<1.2.7", "1.2.6", True), ("<=1.2.7", "1.2.8", False),
    (">1.2", "1.3.0", True), (">1.2", "1.2.9", False), ("<=1.2", "1.2.9", True), ("<1.2", "1.2.0", False),
    ("1.x", "1.99.0", True), ("1.2.*", "1.3.0", False), ("1.X", "2.0.0", False), ("1", "1.0.5", True),
    ("*", "9.9.9", True), ("", "0.0.1", True), ("x", "3.0.0", True),
    ("1.2.3 - 2.3.4", "2.3.4", True), ("1.2.3 - 2.3.4", "2.3.5", False),
    ("1.2 - 2.3.4", "1.2.0", True), ("1.2.3 - 2.3", "2.3.9", True), ("1.2.3 - 2.3", "2.4.0", False),
    ("1.2.3 - 2", "2.9.9", True), ("1.2.3 - 2", "3.0.0", False),
    (">=1.2.7 <1.3.0", "1.2.8", True), (">=1.2.7 <1.3.0", "1.3.0", False),
    ("1.2.7 || >=1.2.9 <2.0.0", "1.2.8", False), ("1.2.7 || >=1.2.9 <2.0.0", "1.4.6", True),
    ("<1.2.7 || >=2", "2.5.0", True), ("<1.2.7 || >=2", "1.5.0", False),
    (">= 1.0.0", "1.0.0", True), ("^ 1.0.0", "1.1.0", True), (">*", "1.0.0", False),
    # Prereleases: only when the range names one of the same major.minor.patch.
    ("*", "1.0.0-beta", False), ("^1.2.3", "1.3.0-beta", False), ("^1.2.3-beta.2", "1.2.3-beta.4", True),
    ("^1.2.3-beta.2", "1.2.4-beta.1", False), ("^1.2.3-beta.2", "1.2.3-alpha", False),
    ("~1.2.3-beta.2", "1.2.3-beta.3", True), (">=1.0.0-rc.1", "1.0.0", True), ("<2.0.0", "2.0.0-rc.1", False),
])
def test_ranges(range_text: str, version: str, expected: bool) -> None:
    assert satisfies(version, range_text) is expected


@pytest.mark.parametrize("bad", ["latest", "git+https://x/y.git", "file:../x", "npm:x@1", "^1.2.3.4",
                                 ">=a", "1.2.3 -", "~>", "http://x"])
def test_non_ranges_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError):
        parse_range(bad)


def test_best_picks_the_highest_satisfying_version() -> None:
    versions = [parse_version(v) for v in ["1.0.0", "1.4.0", "1.5.0-beta", "2.0.0"]]
    best = parse_range("^1.0.0").best(versions)
    assert best is not None and str(best) == "1.4.0"
    assert parse_range("^3").best(versions) is None


def test_the_semver_spec_order() -> None:
    order = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
             "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0"]
    parsed = [parse_version(v) for v in order]
    assert sorted(reversed(parsed)) == parsed
    assert [str(v) for v in parsed] == order


_ident = st.one_of(st.integers(0, 50), st.sampled_from(["alpha", "beta", "rc", "x-1", "a0"]))
versions = st.builds(Version, st.integers(0, 20), st.integers(0, 20), st.integers(0, 20),
                     st.lists(_ident, max_size=3).map(tuple))


@given(versions, versions, versions)
def test_ordering_is_a_total_order(a: Version, b: Version, c: Version) -> None:
    assert (a < b) + (b < a) + (a == b) == 1
    if a <= b and b <= c:
        assert a <= c


@given(versions)
def test_a_version_round_trips_and_sorts_after_its_prereleases(v: Version) -> None:
    assert parse_version(str(v)) == v
    release = Version(*v.release)
    if v.prerelease:
        assert v < release
    assert satisfies(release, f"={release}")


@given(versions, versions)
def test_a_hyphen_range_is_the_interval(low: Version, high: Version) -> None:
    lo, hi = Version(*low.release), Version(*high.release)
    if hi < lo:
        lo, hi = hi, lo
    r = parse_range(f"{lo} - {hi}")
    assert r.test(lo) and r.test(hi)
    mid = Version(*low.release)
    assert r.test(mid) == (lo <= mid <= hi)
