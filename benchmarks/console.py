"""The web console in Debian's headless Chromium against a real daemon: its first load (bytes
transferred, split into the console's own files and the API calls; the time until the first
page is usable, the console's `console-ready` mark) and the time from pressing Enter in the
REPL to the first console line on the screen, for `console.log(1)`. With `--screenshots DIR`
it also saves a screenshot of each main page there (the README shows those of docs/console/).

    python -m benchmarks.console [--runs N] [--screenshots docs/console]

Measured inside the page (performance entries and a MutationObserver), so the driver's own
round trips are not in the figures. Nothing asserts on them: they are printed (and written
as JSON with --json FILE).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks.browser import start_chromium
from benchmarks.daemon import Connection, create_session, create_template, start_daemon, worktree

LOAD = """
const entries = [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')];
const own = entries.filter((e) => !new URL(e.name).pathname.startsWith('/api/'));
const api = entries.filter((e) => new URL(e.name).pathname.startsWith('/api/'));
const sum = (list, key) => list.reduce((n, e) => n + (e[key] || 0), 0);
const ready = performance.getEntriesByName('console-ready')[0];
return {files: own.length, file_bytes: sum(own, 'encodedBodySize'), file_transfer_bytes: sum(own, 'transferSize'),
        api_calls: api.length, api_bytes: sum(api, 'encodedBodySize'),
        ready_ms: ready ? ready.startTime : null,
        dom_content_loaded_ms: performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd};
"""
# Times Enter (capture phase, before the console's own handler) to the first console line
# of the new execution block; the result lands in window.__enterToLine.
WATCH_ENTER = """
const editor = document.getElementById('repl-input');
const transcript = document.getElementById('transcript');
window.__enterToLine = null;
let pressed = null;
const onKey = (e) => {
  if (e.key !== 'Enter' || e.shiftKey) return;
  pressed = performance.now();
  editor.removeEventListener('keydown', onKey, true);
};
editor.addEventListener('keydown', onKey, true);
const seen = transcript.querySelectorAll('.line.console').length;
const observer = new MutationObserver(() => {
  if (pressed !== null && transcript.querySelectorAll('.line.console').length > seen) {
    window.__enterToLine = performance.now() - pressed;
    observer.disconnect();
  }
});
observer.observe(transcript, {childList: true, subtree: true});
"""
PAGES = (("templates", "#/templates"), ("template", "#/templates/{template}"), ("sessions", "#/sessions"),
         ("repl", "#/sessions/{session}"), ("run", "#/run"), ("runtime", "#/runtime"))


def _wait(driver: Any, script: str, timeout: float = 30.0) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.01).until(lambda d: d.execute_script(script))


def _settled(driver: Any) -> None:
    _wait(driver, "const m = document.getElementById('main'); return m && !m.hasAttribute('aria-busy')"
                  " && document.readyState === 'complete'")


def measure(directory: Path, runs: int, screenshots: Path | None) -> dict[str, Any]:
    from selenium.webdriver.common.keys import Keys

    with ExitStack() as stack:
        daemon = start_daemon(stack, directory / "daemon")
        conn = Connection(daemon.url)
        stack.callback(conn.close)
        template_id = create_template(conn, "bench-console")
        session_id = create_session(conn, template_id, worktree(directory))
        driver = start_chromium(directory / "profile")
        stack.callback(driver.quit)
        driver.get(f"{daemon.url}/#/sessions/{session_id}")  # a fresh profile: nothing cached
        _settled(driver)
        _wait(driver, "return performance.getEntriesByName('console-ready').length > 0")
        load = driver.execute_script(LOAD)
        enter_ms = []
        editor = driver.find_element("id", "repl-input")
        for _ in range(runs):
            # The previous input has finished and the REPL has handed the focus back.
            _wait(driver, "const b = [...document.querySelectorAll('#transcript .execution')].pop();"
                          " return (!b || b.dataset.status) && document.activeElement.id === 'repl-input'")
            driver.execute_script(WATCH_ENTER)
            editor.send_keys("console.log(1)", Keys.ENTER)
            enter_ms.append(_wait(driver, "return window.__enterToLine"))
        result = {"first_load": load, "enter_to_first_console_line_ms": {
            "runs": runs, "median": statistics.median(enter_ms), "min": min(enter_ms), "max": max(enter_ms)}}
        if screenshots is not None:
            screenshots.mkdir(parents=True, exist_ok=True)
            for name, route in PAGES:
                driver.get(f"{daemon.url}/{route.format(template=template_id, session=session_id)}")
                _settled(driver)
                driver.save_screenshot(str(screenshots / f"{name}.png"))
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.console", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="Enter-to-first-line samples (default 20)")
    parser.add_argument("--screenshots", type=Path, default=None, metavar="DIR")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vm-system-console-") as tmp:
        result = measure(Path(tmp), max(1, args.runs), args.screenshots)
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
