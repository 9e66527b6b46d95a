"""Debian's headless Chromium under Selenium, started the one way both the console's benchmark
(benchmarks/console.py) and its browser tests (tests/web) use. Selenium is imported when a
browser starts: `vm-system bench` without it still runs every other scenario."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from selenium import webdriver

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--disable-dev-shm-usage", "--window-size=1280,800")


def executable(name: str, *alternatives: str) -> str:
    """The program's path on PATH; a RuntimeError saying how to install it otherwise."""
    for candidate in (name, *alternatives):
        found = shutil.which(candidate)
        if found:
            return found
    raise RuntimeError(f"{name} is not installed: the web console's browser needs Debian's chromium and "
                       "chromium-driver packages (apt-get install -y chromium chromium-driver; .ci/run does it)")


def start_chromium(profile: Path) -> webdriver.Chrome:
    """A fresh headless Chromium with its own profile directory and its console log kept."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = executable("chromium", "chromium-browser")
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.set_capability("unhandledPromptBehavior", "ignore")
    return webdriver.Chrome(options=options, service=Service(executable_path=executable("chromedriver")))
