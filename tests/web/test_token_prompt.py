"""With `serve --token`, the console (served without one) asks for the token when the API
answers 401, asks again when it is refused, keeps it in session storage only, and sends it
as a bearer header; the API's auth rules are unchanged."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from browser import Browser
from selenium.webdriver.common.keys import Keys

from tests.http.http_daemon import Daemon, start_daemon

TOKEN = "s3cret-console-token"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    proc = start_daemon(tmp_path_factory.mktemp("web-token-daemon"), "--token", TOKEN)
    yield proc
    assert proc.stop() == 0, proc.stderr_tail()


def test_the_console_is_served_without_the_token_and_the_api_still_needs_it(daemon: Daemon) -> None:
    with httpx.Client(base_url=daemon.url) as client:
        assert client.get("/").status_code == 200
        assert client.get("/api/v1/templates").status_code == 401
        assert client.get("/api/v1/templates", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_the_console_asks_for_the_token_and_keeps_it_for_the_tab_only(browser: Browser, daemon: Daemon) -> None:
    with httpx.Client(base_url=daemon.api, headers={"authorization": f"Bearer {TOKEN}"}) as api:
        assert api.post("/templates", json={"name": "behind-a-token"}).status_code == 201
    browser.open(daemon.url + "/#/templates", settle=False)  # the page waits for the token
    field = browser.find("#token-form input[name=token]")
    assert browser.driver.switch_to.active_element == field
    field.send_keys("wrong-token", Keys.ENTER)
    browser.text_appears("#token-help", "refused")
    browser.find("#token-form input[name=token]").send_keys(TOKEN, Keys.ENTER)
    browser.settled()
    browser.text_appears("td a", "behind-a-token")
    assert not browser.all("#token-form")
    assert browser.session_storage() == {"vm-system.token": TOKEN}
    assert browser.driver.execute_script("return localStorage.length") == 0
    assert browser.driver.execute_script("return document.cookie") == ""
    # Another page of the same tab uses the stored token without asking.
    browser.open(daemon.url + "/#/runtime")
    assert browser.find("[data-key=active_sessions]").text.isdigit()
    assert not browser.all("#token-form")
