"""The suite's own layout: test folders are not packages, so pytest imports every test module and
helper by its file name alone, and two files of one name in two folders break collection of the
second (`import file mismatch`), or make one folder import the other's helper."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_every_module_of_the_suite_has_a_name_of_its_own() -> None:
    by_name: dict[str, list[str]] = defaultdict(list)
    for path in TESTS.rglob("*.py"):
        if path.name != "conftest.py" and "__pycache__" not in path.parts:
            by_name[path.name].append(str(path.relative_to(TESTS)))
    shared = {name: paths for name, paths in by_name.items() if len(paths) > 1}
    assert not shared, f"test modules sharing a file name: {shared}"
    assert len(by_name) > 50
