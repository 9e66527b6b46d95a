"""Fixtures of the web console's tests: a REAL daemon per module (tests/http/http_daemon.py)
and a REAL headless Chromium driven by Selenium (browser.py).

Debian's `chromium` and `chromium-driver` must be installed (`.ci/run` installs them): a
missing browser fails these tests, it never skips them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import Browser, start_browser

from tests.http.http_daemon import Daemon, start_daemon


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    proc = start_daemon(tmp_path_factory.mktemp("web-daemon"))
    yield proc
    assert proc.stop() == 0, proc.stderr_tail()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    with start_browser(tmp_path_factory.mktemp("chromium-profile")) as b:
        yield b


@pytest.fixture(autouse=True)
def no_dialog_or_script_error(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every browser test ends with no dialog opened and no script error, CSP violation or
    missing file in the browser's log."""
    yield
    if "browser" in request.fixturenames:
        request.getfixturevalue("browser").assert_clean()


@pytest.fixture(scope="module")
def worktree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wt = tmp_path_factory.mktemp("web-worktree")
    (wt / "main.js").write_text("console.log('from main.js'); 40 + 2\n")
    return wt
