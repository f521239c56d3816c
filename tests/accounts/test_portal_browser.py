"""The privacy portal in a real browser, walked as a person would: log in, see what is remembered,
correct a memory (and find the old text in its history), stop one being used, delete one (password
and typed "delete"), then prepare an export, wait for its link and download it — with the session
only; without it, it is refused. And an API key: made on its page with one scope ticked, shown
once, working within its scope only, revoked with one click.

Drives Debian's headless Chromium through selenium against pytest-django's live server, with the
browser fixture of tests/chat/test_browser.py. Celery is eager (tests/conftest.py), so the export is
built inside the request that asks for it; the export page would otherwise reload itself (a Refresh
header) until ready.
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

pytestmark = pytest.mark.browser

if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
    pytest.skip(
        f"browser tests need {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )

from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from chat.services import chat_turn  # noqa: E402
from memories.services import memory_remember  # noqa: E402
from tests.chat import test_browser as chat_browser  # noqa: E402

# the same headless-Chromium fixture (offline selenium, throwaway profile)
browser = chat_browser.browser
_text = chat_browser._text
_submit = chat_browser._submit

WAIT_SECONDS = chat_browser.WAIT_SECONDS
PASSWORD = "alice-pass-123"  # tests/conftest.py
LISBON, PORTO, BICYCLE = "User lives in Lisbon", "User lives in Porto", "User owns a red bicycle"


@pytest.fixture(autouse=True)
def _data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path  # export archives go to DATA_DIR/exports
    settings.EXPORT_LINK_HOURS = 24


def _wait(driver) -> WebDriverWait:
    # The export page may reload itself (Refresh header) while an element is being read.
    return WebDriverWait(driver, WAIT_SECONDS, ignored_exceptions=(StaleElementReferenceException,))


def _memories(driver) -> dict[str, WebElement]:
    """The memories listed on "What I remember", by text."""
    items = driver.find_elements(By.CSS_SELECTOR, "li.memory")
    return {_text(li.find_element(By.CSS_SELECTOR, ".memory-text a")): li for li in items}


def _open_remembered(driver, live_server) -> dict[str, WebElement]:
    driver.find_element(By.CSS_SELECTOR, "header").find_element(
        By.LINK_TEXT, "What I remember"
    ).click()
    _wait(driver).until(EC.url_to_be(live_server.url + "/memories/"))
    _wait(driver).until(EC.presence_of_element_located((By.CSS_SELECTOR, "h1")))
    return _memories(driver)


def _fetch(url: str, cookie: str | None) -> tuple[int, dict[str, str], bytes]:
    """GET without following redirects: (status, headers, body)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=WAIT_SECONDS) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_the_privacy_portal_in_the_browser(browser, live_server, alice):
    # 1. Seed: two memories added by hand and one conversation.
    memory_remember(user=alice, kind="fact", text=LISBON)
    memory_remember(user=alice, kind="fact", text=BICYCLE)
    chat_turn(user=alice, conversation=None, text="Hello! Could you help me plan my weekend?")

    # Log in through the real form.
    browser.get(live_server.url + "/accounts/login/")
    browser.find_element(By.NAME, "username").send_keys("alice")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    _submit(browser, "login-button")
    _wait(browser).until(EC.url_to_be(live_server.url + "/chat/"))

    # 2. View: both memories are listed under "What I remember".
    listed = _open_remembered(browser, live_server)
    assert {LISBON, BICYCLE} <= set(listed), list(listed)

    # 3. Edit: correct Lisbon to Porto on its page; the history keeps the old text.
    browser.find_element(By.LINK_TEXT, LISBON).click()
    _wait(browser).until(EC.url_matches(r"/memories/\d+/$"))
    detail_url = browser.current_url
    textarea = browser.find_element(By.CSS_SELECTOR, "textarea[name=text]")
    assert textarea.get_attribute("value") == LISBON
    textarea.clear()
    textarea.send_keys(PORTO)
    _submit(browser, "save-memory")
    _wait(browser).until(EC.url_to_be(detail_url))
    assert _text(browser.find_element(By.TAG_NAME, "h1")) == PORTO
    history = _text(browser.find_element(By.XPATH, "//h2[.='History']/following-sibling::ul[1]"))
    assert LISBON in history and PORTO in history, history

    # 4. Don't use: the bicycle memory stays listed, marked "not used".
    listed = _open_remembered(browser, live_server)
    assert PORTO in listed and LISBON not in listed, list(listed)
    assert "not used" not in _text(listed[BICYCLE])
    listed[BICYCLE].find_element(By.XPATH, './/button[normalize-space()="Don\'t use this"]').click()
    _wait(browser).until(
        lambda d: (
            BICYCLE in (m := _memories(d))
            and "not used"
            in [_text(b) for b in m[BICYCLE].find_elements(By.CSS_SELECTOR, ".badge")]
        )
    )
    bicycle = _memories(browser)[BICYCLE]
    assert "unused" in (bicycle.get_attribute("class") or "")
    assert bicycle.find_elements(By.XPATH, ".//button[normalize-space()='Use this again']")

    # 5. Delete: the Porto memory, after the password and typing "delete".
    _memories(browser)[PORTO].find_element(By.LINK_TEXT, "Delete…").click()
    _wait(browser).until(EC.url_matches(r"/memories/\d+/delete/$"))
    assert PORTO in _text(browser.find_element(By.TAG_NAME, "blockquote"))
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.NAME, "confirmation").send_keys("delete")
    _submit(browser, "confirm-delete")
    _wait(browser).until(EC.url_to_be(live_server.url + "/memories/"))
    listed = _memories(browser)
    assert PORTO not in listed and BICYCLE in listed, list(listed)
    assert PORTO not in _text(browser.find_element(By.TAG_NAME, "main"))

    # 6. Export: from the privacy navigation, prepare it and wait for the download link.
    browser.find_element(By.CSS_SELECTOR, "nav.subnav").find_element(
        By.LINK_TEXT, "Export my data"
    ).click()
    _wait(browser).until(EC.url_to_be(live_server.url + "/accounts/privacy/export/"))
    _submit(browser, "prepare-export")
    link = _wait(browser).until(
        EC.visibility_of_element_located((By.CSS_SELECTOR, "#exports a.download"))
    )
    # a ready export: the page no longer reloads itself
    label, href = (
        link.text,
        link.get_attribute("href"),
    )
    assert label.startswith("Download"), label
    assert not browser.find_elements(By.CSS_SELECTOR, "#prepare-export[disabled]")
    assert href.startswith(live_server.url + "/accounts/privacy/export/"), href

    # Download it as this browser's session: a zip whose export.json has what is still remembered.
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in browser.get_cookies())
    status, headers, body = _fetch(href, cookie)
    assert status == 200, (status, headers)
    assert headers.get("Content-Type") == "application/zip"
    assert "attachment" in headers.get("Content-Disposition", "")
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert {"export.json", "export.md"} <= set(archive.namelist())
        raw = archive.read("export.json").decode()
    document = json.loads(raw)
    assert BICYCLE in raw
    assert [m for m in document["memories"] if m["text"] == BICYCLE and not m["use_in_context"]]
    assert document["conversations"], "the seeded conversation is exported"
    # The deleted memory and its history are gone from the memories (the seeded conversation stays,
    # and its offline reply quotes the memories it used).
    memories = json.dumps(document["memories"])
    assert PORTO not in memories and LISBON not in memories, memories

    # Without the session the link is refused: to the login page, or not found.
    status, headers, body = _fetch(href, None)
    assert status in (302, 404), status
    if status == 302:
        assert "/accounts/login/" in headers.get("Location", ""), headers
    assert not body.startswith(b"PK")


def _api_status(url: str, key: str, body: bytes | None = None) -> int:
    request = urllib.request.Request(
        url,
        data=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=WAIT_SECONDS) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_an_api_key_made_and_revoked_in_the_browser(browser, live_server, alice):
    browser.get(live_server.url + "/accounts/login/")
    browser.find_element(By.NAME, "username").send_keys("alice")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    _submit(browser, "login-button")
    _wait(browser).until(EC.url_to_be(live_server.url + "/chat/"))

    # Create: a name, one scope ticked by its label, 30 days, the password again.
    browser.get(live_server.url + "/accounts/privacy/consent/")
    browser.find_element(By.LINK_TEXT, "API keys").click()
    _wait(browser).until(EC.url_to_be(live_server.url + "/accounts/privacy/keys/"))
    browser.find_element(By.NAME, "name").send_keys("my script")
    browser.find_element(
        By.XPATH, '//label[contains(., "Read my memories, profile and context")]'
    ).click()
    browser.find_element(By.CSS_SELECTOR, 'select[name=expires_in_days] option[value="30"]').click()
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    _submit(browser, "create-key")
    key = _text(browser.find_element(By.CSS_SELECTOR, "#new-key code"))
    assert key.startswith("mw_"), key
    row = _text(browser.find_element(By.CSS_SELECTOR, "#api-keys tbody tr"))
    assert "my script" in row and "context:read" in row and "Active" in row, row

    # It works, within its scope only; and the page never shows it again.
    api = live_server.url + "/api/v1/"
    assert _api_status(api + "memories", key) == 200
    assert _api_status(api + "chat", key, b'{"message": "Hi"}') == 403
    browser.get(live_server.url + "/accounts/privacy/keys/")
    assert key not in browser.page_source

    # Revoke: one click; the key stops working at once.
    revoke = browser.find_element(By.CSS_SELECTOR, "#api-keys button[id^=revoke-key-]")
    _submit(browser, revoke.get_attribute("id"))
    row = _text(browser.find_element(By.CSS_SELECTOR, "#api-keys tbody tr"))
    assert "Revoked" in row, row
    assert _api_status(api + "memories", key) == 401
