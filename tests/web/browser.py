"""A headless Chromium (Debian's package) under Selenium, with the checks every console test
makes: no dialog was ever opened (alert/confirm/prompt are recorded before any page script
runs), and the browser logged no script error, CSP violation or failed file.

The browser and its driver are found on PATH or fail loudly: these tests never skip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from benchmarks.browser import start_chromium

WAIT_S = 20.0
# Runs before any script of every page: a dialog, whoever opens it, is recorded.
RECORD_DIALOGS = """
window.__dialogs = [];
for (const name of ["alert", "confirm", "prompt", "print"]) {
  window[name] = function (...args) { window.__dialogs.push([name, String(args[0])]); };
}
"""


class Browser:
    def __init__(self, driver: Any) -> None:
        self.driver = driver

    # ----- navigation and waiting -------------------------------------------------------------

    def open(self, url: str, *, settle: bool = True) -> None:
        self.driver.get(url)
        if settle:
            self.settled()

    def settled(self) -> None:
        """The page's route has rendered (<main> is not busy)."""
        self.wait(lambda d: d.execute_script(
            "const m = document.getElementById('main'); return m && !m.hasAttribute('aria-busy')"
            " && document.readyState === 'complete'"))

    def wait(self, condition: Callable[[Any], Any], timeout: float = WAIT_S, message: str = "") -> Any:
        # A page re-renders as its data arrives: an element found a moment ago may be gone.
        return WebDriverWait(self.driver, timeout, poll_frequency=0.05,
                             ignored_exceptions=(StaleElementReferenceException,)).until(condition, message)

    def find(self, css: str) -> WebElement:
        return self.wait(lambda d: _first(d.find_elements(By.CSS_SELECTOR, css)), message=f"no {css}")

    def all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text_appears(self, css: str, text: str, timeout: float = WAIT_S) -> WebElement:
        return self.wait(lambda d: _first([e for e in d.find_elements(By.CSS_SELECTOR, css) if text in e.text]),
                         timeout, f"{text!r} never appeared in {css}")

    def session_storage(self) -> dict[str, str]:
        return self.driver.execute_script(
            "const o = {}; for (let i = 0; i < sessionStorage.length; i++) { const k = sessionStorage.key(i);"
            " o[k] = sessionStorage.getItem(k); } return o;")

    # ----- the checks -------------------------------------------------------------------------

    def problems(self) -> list[str]:
        found = []
        try:
            alert = self.driver.switch_to.alert
            found.append(f"a dialog is open: {alert.text!r}")
            alert.dismiss()
        except NoAlertPresentException:
            pass
        dialogs = self.driver.execute_script("return window.__dialogs || []")
        found += [f"the page opened a dialog: {d!r}" for d in dialogs]
        for entry in self.driver.get_log("browser"):
            message = entry.get("message", "")
            # The API answering 4xx to a request the test made fail on purpose (a validation
            # error, a 401 before the token) is the console working; anything else is not.
            expected = entry.get("source") == "network" and "/api/v1/" in message and " status of 4" in message
            if entry.get("level") in ("SEVERE", "WARNING") and not expected:
                found.append(f"browser log: {entry.get('level')} {message}")
        return found

    def assert_clean(self) -> None:
        problems = self.problems()
        assert not problems, "\n".join(problems)


def _first(elements: list[WebElement]) -> WebElement | bool:
    return elements[0] if elements else False


@contextmanager
def start_browser(profile: Path) -> Iterator[Browser]:
    driver = start_chromium(profile)
    try:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_DIALOGS})
        yield Browser(driver)
    finally:
        driver.quit()
