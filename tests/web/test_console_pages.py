"""The web console in a real headless Chromium against a real daemon: a template and a
session made in the UI, the REPL's live console lines, a limit stop, closing, the history
after a reload, one-shot runs, the runtime page, and what a script prints shown as text only.

The tests of this module run in order on one daemon and one browser: each goes on from the
state the previous left (the template, then its session, then that session's history).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from browser import Browser
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement

from tests.http.http_daemon import Daemon

STATE: dict[str, Any] = {}
# The first line is printed at once, the second by a timer ~2.5 s later, and only then does
# the execution end (a REPL input ends when its timers have run).
LIVE = "console.log('first line'); setTimeout(() => console.log('later line'), 2500); 6 * 7"


def _type_and_enter(browser: Browser, code: str) -> WebElement:
    """Type `code` into the REPL (its newlines with Shift+Enter) and press Enter; the new block."""
    editor = browser.find("#repl-input")
    browser.wait(lambda d: editor.is_enabled())
    before = len(browser.all("#transcript .execution"))
    for i, line in enumerate(code.split("\n")):
        if i:
            editor.send_keys(Keys.SHIFT, Keys.ENTER)
        editor.send_keys(line)
    editor.send_keys(Keys.ENTER)
    browser.wait(lambda d: len(browser.all("#transcript .execution")) > before)
    return browser.all("#transcript .execution")[-1]


def _finished(browser: Browser, block: WebElement) -> str:
    browser.wait(lambda d: block.get_attribute("data-status"), message="the execution never finished")
    return str(block.get_attribute("data-status"))


def test_a_template_is_created_and_its_settings_refuse_a_bad_limit_at_the_field(
        browser: Browser, daemon: Daemon) -> None:
    browser.open(daemon.url + "/#/templates")
    browser.find("#template-create input[name=name]").send_keys("console-demo", Keys.ENTER)
    browser.text_appears("h1", "console-demo")
    STATE["template_id"] = browser.driver.current_url.rsplit("/", 1)[1]
    cpu = browser.find("#settings-form input[name='limits.cpu_ms']")
    cpu.clear()
    cpu.send_keys("-5")
    browser.find("#settings-form button[type=submit]").click()
    error = browser.text_appears("[data-field='limits.cpu_ms'] .field-error", "cpu_ms")
    assert "VALIDATION_ERROR" in error.text
    assert cpu.get_attribute("aria-invalid") == "true"
    with httpx.Client(base_url=daemon.api) as api:
        assert api.get(f"/templates/{STATE['template_id']}/settings").json()["limits"]["cpu_ms"] == 2000
    cpu.clear()
    cpu.send_keys("400")
    browser.find("#settings-form button[type=submit]").click()
    browser.text_appears(".notice", "Settings saved")
    with httpx.Client(base_url=daemon.api) as api:
        assert api.get(f"/templates/{STATE['template_id']}/settings").json()["limits"]["cpu_ms"] == 400
    # A module added and shown; an unknown one refused at its field.
    browser.find("#module-form input[name=name]").send_keys("nonsense", Keys.ENTER)
    browser.text_appears("#module-form .field-error", "MODULE_NOT_ALLOWED")
    browser.find("#module-form input[name=name]").send_keys(Keys.CONTROL, "a", Keys.DELETE)
    browser.find("#module-form input[name=name]").send_keys("fs", Keys.ENTER)
    browser.text_appears(".notice", "Module added")
    browser.text_appears("section[aria-label=Modules] td", "fs")


def test_a_session_is_created_from_the_template_with_a_worktree(browser: Browser, daemon: Daemon,
                                                                 worktree: Path) -> None:
    browser.find("a[href^='#/sessions?template=']").click()
    browser.settled()
    select = browser.find("#session-create select[name=template_id]")
    assert select.get_attribute("value") == STATE["template_id"]
    browser.find("#session-create input[name=worktree_path]").send_keys(str(worktree), Keys.ENTER)
    browser.text_appears("#session-status", "ready")
    STATE["session_id"] = browser.driver.current_url.rsplit("/", 1)[1]
    # No absent field shown as a word ("null", "undefined") beside the session's facts.
    assert not browser.driver.execute_script(
        "return [...document.querySelectorAll('main > *')].filter(e => !e.children.length"
        " && /^(null|undefined)$/.test(e.textContent.trim())).length")
    assert "null" not in browser.find("main").text.split()
    assert browser.driver.switch_to.active_element == browser.find("#repl-input")


def test_repl_console_lines_arrive_while_the_execution_runs(browser: Browser, daemon: Daemon) -> None:
    block = _type_and_enter(browser, LIVE)
    browser.text_appears("#transcript .execution:last-child .line.console", "first line")
    execution_id = block.get_attribute("data-execution")
    assert execution_id
    # The line is on the screen, and the execution has not ended: the daemon says so, and
    # the second line is not there yet.
    with httpx.Client(base_url=daemon.api) as api:
        assert api.get(f"/executions/{execution_id}").json()["status"] == "running"
    consoles = [e.text for e in block.find_elements(By.CSS_SELECTOR, ".line.console pre")]
    assert consoles == ["first line"]
    assert "state-running" in str(block.get_attribute("class"))
    assert _finished(browser, block) == "ok"
    lines = [e.text for e in block.find_elements(By.CSS_SELECTOR, ".line pre")]
    assert lines == [LIVE, "first line", "later line", "42"]
    assert "wall" in block.find_element(By.CSS_SELECTOR, ".metrics").text


def test_shift_enter_adds_a_line_and_the_arrows_walk_the_history(browser: Browser) -> None:
    block = _type_and_enter(browser, "const a = 20\nconst b = 22\na + b")
    assert _finished(browser, block) == "ok"
    assert block.find_elements(By.CSS_SELECTOR, ".line.value pre")[0].text == "42"
    editor = browser.find("#repl-input")
    editor.send_keys(Keys.ARROW_UP)
    assert editor.get_attribute("value") == "const a = 20\nconst b = 22\na + b"
    # Within a recalled multi-line input the arrows move the caret; from its first line, ↑
    # goes one input further back.
    editor.send_keys(Keys.CONTROL, Keys.HOME)
    editor.send_keys(Keys.ARROW_UP)
    assert editor.get_attribute("value") == LIVE
    editor.send_keys(Keys.ARROW_DOWN)
    editor.send_keys(Keys.ARROW_DOWN)
    assert editor.get_attribute("value") == ""


def test_a_limit_stop_is_shown_as_one(browser: Browser) -> None:
    block = _type_and_enter(browser, "console.log('spinning'); while (true) {}")
    assert _finished(browser, block) in ("timeout", "limit_exceeded")
    assert "state-limit" in str(block.get_attribute("class"))
    limit = block.find_element(By.CSS_SELECTOR, ".line.limit")
    assert "cpu_ms" in limit.text and "limit stop" in limit.text
    # The session survived it.
    after = _type_and_enter(browser, "a * 2")
    assert _finished(browser, after) == "ok"


HOSTILE = [
    ("console.log('<img src=x onerror=alert(1)>')", ".line.console pre", "<img src=x onerror=alert(1)>"),
    ("'</script><script>alert(1)</script>'", ".line.value pre", "'</script><script>alert(1)</script>'"),
    ("({html: '<b onmouseover=alert(1)>bold</b>', t: '<svg onload=alert(1)>'})", ".line.value pre",
     "<b onmouseover=alert(1)>bold</b>"),
    ("throw new Error('<iframe src=javascript:alert(1)>')", ".line.exception pre", "<iframe src=javascript:alert(1)>"),
]


@pytest.mark.parametrize(("code", "where", "shown"), HOSTILE, ids=["console", "value", "object", "exception"])
def test_what_a_script_prints_is_shown_as_text_and_runs_nothing(browser: Browser, code: str, where: str,
                                                                shown: str) -> None:
    block = _type_and_enter(browser, code)
    _finished(browser, block)
    texts = [e.text for e in block.find_elements(By.CSS_SELECTOR, where)]
    assert any(shown in t for t in texts), texts
    # No element came from the script's text: the block holds only the console's own markup.
    tags = set(browser.driver.execute_script(
        "return [...arguments[0].querySelectorAll('*')].map(e => e.tagName.toLowerCase())", block))
    assert tags <= {"div", "span", "pre", "a", "section"}, tags
    assert not browser.all("img, iframe, svg, script:not([type=module])"), "markup from a script reached the page"
    browser.assert_clean()


def test_closing_the_session_and_reloading_shows_its_history(browser: Browser, daemon: Daemon) -> None:
    browser.find("#close-session").click()
    browser.text_appears("#session-status", "closed")
    assert not browser.find("#repl-input").is_enabled()
    browser.driver.refresh()
    browser.settled()
    browser.text_appears("#session-status", "closed")
    blocks = browser.all("#transcript .execution")
    assert len(blocks) >= 8
    assert "first line" in blocks[0].text and "later line" in blocks[0].text
    assert [b.get_attribute("data-status") for b in blocks][:3] == ["ok", "ok", blocks[2].get_attribute("data-status")]
    # An execution's own page, with its events.
    blocks[0].find_element(By.CSS_SELECTOR, ".block-head a").click()
    browser.settled()
    browser.text_appears(".transcript .line.console", "later line")
    browser.text_appears("h1", "Execution")


def test_the_session_list_filters_by_status(browser: Browser, daemon: Daemon) -> None:
    session_link = f"a[data-session='{STATE['session_id']}']"
    browser.open(daemon.url + "/#/sessions?status=closed")
    browser.find(session_link)
    browser.open(daemon.url + "/#/sessions?status=ready")
    assert not browser.all(session_link)
    browser.find("#status-filter").send_keys("all")
    browser.wait(lambda d: "status=" not in d.current_url)
    browser.settled()
    browser.find(session_link)


def test_a_one_shot_run_streams_and_links_its_execution(browser: Browser, daemon: Daemon) -> None:
    browser.open(daemon.url + "/run")  # a path route: the console serves index.html and routes it
    code = browser.find("#run-form textarea[name=code]")
    code.send_keys("console.log('once', '<b>not bold</b>'); 6 * 7")
    code.send_keys(Keys.CONTROL, Keys.ENTER)
    output = browser.text_appears("#run-output .line.value pre", "42")
    assert output
    browser.text_appears("#run-output .line.console pre", "once <b>not bold</b>")
    assert not browser.all("#run-output b")


def test_the_runtime_page_shows_the_summary(browser: Browser, daemon: Daemon) -> None:
    browser.open(daemon.url + "/#/runtime")
    assert browser.find("[data-key=active_sessions]").text.isdigit()
    assert browser.find("[data-key=executions_running]").text == "0"


def test_the_console_is_usable_on_a_phone_sized_viewport(browser: Browser, daemon: Daemon) -> None:
    browser.driver.set_window_size(390, 844)
    try:
        browser.open(daemon.url + f"/#/sessions/{STATE['session_id']}")
        width = browser.driver.execute_script("return document.documentElement.scrollWidth")
        viewport = browser.driver.execute_script("return window.innerWidth")
        assert width <= viewport, f"the page scrolls sideways: {width} > {viewport}"
        browser.find("#transcript .execution")
    finally:
        browser.driver.set_window_size(1280, 800)
