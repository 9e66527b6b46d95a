"""docs/api.md is the contract the code serves: every route the daemon serves and every error
code it can answer is written down there, with the status the code gives it; every reference
to the contract names that file."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from supervisor import Supervisor
from supervisor.adapters.http.app import PREFIX, create_app
from supervisor.adapters.http.errors import STATUS_BY_CODE

ROOT = Path(__file__).resolve().parent.parent
API_DOC = ROOT / "docs" / "api.md"
METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")


def _normal(path: str) -> str:
    path = path.split("?")[0].rstrip("/.,;:`")
    if path.startswith(PREFIX):
        path = path[len(PREFIX):]
    return re.sub(r"\{[^}]*\}", "{}", path)


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("contract")
    with Supervisor.open(root / "contract.db", library_dir=root) as sup:
        return create_app(sup).openapi()


def documented_routes(text: str) -> set[tuple[str, str]]:
    found = set()
    for method, path in re.findall(r"`(GET|POST|PATCH|PUT|DELETE) (/[^` ]*)", text):
        found.add((method, _normal(path)))
    return found


def test_every_served_route_is_documented(openapi: dict[str, Any]) -> None:
    served = {(method.upper(), _normal(path)) for path, ops in openapi["paths"].items()
              for method in ops if method.upper() in METHODS}
    assert len(served) > 20
    missing = served - documented_routes(API_DOC.read_text(encoding="utf-8"))
    assert not missing, f"routes the daemon serves that docs/api.md does not name: {sorted(missing)}"


def test_every_documented_route_is_served(openapi: dict[str, Any]) -> None:
    served = {(method.upper(), _normal(path)) for path, ops in openapi["paths"].items() for method in ops}
    stale = documented_routes(API_DOC.read_text(encoding="utf-8")) - served
    assert not stale, f"routes docs/api.md names that the daemon does not serve: {sorted(stale)}"


def test_every_error_code_is_documented_with_its_status() -> None:
    rows = {}
    for line in API_DOC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[1].isdigit():
            for code in re.findall(r"`([A-Z_]+)`", cells[2]):
                rows[code] = int(cells[1])
    assert rows, "docs/api.md has no status/code table"
    for code, status in STATUS_BY_CODE.items():
        assert rows.get(code) == status, f"{code}: the code answers {status}, docs/api.md says {rows.get(code)}"
    unknown = set(rows) - set(STATUS_BY_CODE)
    assert not unknown, f"docs/api.md lists codes the daemon never answers: {sorted(unknown)}"


def test_every_reference_names_docs_api_md() -> None:
    bare = re.compile(r"(?<![/\w])API\.md")
    offenders = []
    sources = ("sandbox", "store", "supervisor", "benchmarks", "vocabulary", "tests")
    for path in [*ROOT.glob("*.md"), *ROOT.glob("docs/*.md"),
                 *(p for d in sources for p in (ROOT / d).rglob("*.py"))]:
        if path == Path(__file__):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if bare.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}")
    assert not offenders, f"references to a bare API.md: {offenders}"


def test_serve_help_points_at_the_contract() -> None:
    done = subprocess.run([sys.executable, "-m", "supervisor.adapters.cli", "serve", "--help"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "docs/api.md" in " ".join(done.stdout.split())
