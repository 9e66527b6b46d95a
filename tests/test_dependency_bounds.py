"""Every dependency in pyproject.toml has a tested upper bound, and what is installed honours it.

CI installs the newest versions the bounds allow on a fresh machine; a bound that is missing, or
an environment that drifted outside the bounds (a hand-installed upgrade, a resolver that ignored
them), would make a green run here say nothing about a fresh install.
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
UPPER_OPERATORS = {"<", "<=", "==", "~=", "==="}


def _requirements() -> list[tuple[str, Requirement]]:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    found = [("dependencies", Requirement(text)) for text in project["dependencies"]]
    for extra, texts in project.get("optional-dependencies", {}).items():
        found += [(f"[{extra}]", Requirement(text)) for text in texts]
    return found


REQUIREMENTS = _requirements()


def has_upper_bound(specifier: SpecifierSet) -> bool:
    return any(spec.operator in UPPER_OPERATORS for spec in specifier)


def test_the_list_is_read() -> None:
    names = {req.name for _, req in REQUIREMENTS}
    assert {"wasmtime", "fastapi", "pytest", "schemathesis", "hypothesis"} <= names


@pytest.mark.parametrize(("where", "req"), REQUIREMENTS, ids=[f"{w}:{r.name}" for w, r in REQUIREMENTS])
def test_every_dependency_has_an_upper_bound(where: str, req: Requirement) -> None:
    assert has_upper_bound(req.specifier), f"{req} in {where} has no upper bound"


@pytest.mark.parametrize(("where", "req"), REQUIREMENTS, ids=[f"{w}:{r.name}" for w, r in REQUIREMENTS])
def test_installed_version_is_inside_its_bounds(where: str, req: Requirement) -> None:
    # The suite runs with the test extra installed, and the bench extra names only packages the
    # test extra names too: every one of them must be installed here.
    version = metadata.version(req.name)
    assert req.specifier.contains(version, prereleases=True), (
        f"{req.name} {version} is installed, but pyproject.toml {where} allows only {req.specifier}"
    )


def test_the_rule_can_fail() -> None:
    assert not has_upper_bound(SpecifierSet(">=8.0"))
    assert has_upper_bound(SpecifierSet(">=8.0,<9.2"))
    assert not SpecifierSet(">=8.0,<9.2").contains("9.2.0")
