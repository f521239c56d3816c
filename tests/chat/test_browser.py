"""The headline story in a real browser: sign up, tell the assistant something, end the
conversation, start a new one and see the memory used, then find it (with its source message) under
"What I remember".

Drives Debian's headless Chromium through selenium against pytest-django's live server. The chat
turn's on_commit extraction runs eagerly inside the live server's request (the autouse fixture makes
Celery eager).
"""

from __future__ import annotations

import shutil
import tempfile
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

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import (  # noqa: E402
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from tests.ai.conftest import llm_server, openai_server  # noqa: E402, F401 (fixtures)

WAIT_SECONDS = 30  # the first chat turn may load the local embedding model inside the request
SCREENSHOT = Path("/tmp/browser-chat.png")
PASSWORD = "correct-Horse-battery-77"


@pytest.fixture
def browser(monkeypatch):
    monkeypatch.setenv("SE_OFFLINE", "true")  # never let selenium-manager fetch anything
    profile = tempfile.mkdtemp(prefix="memoryweb-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(driver) -> WebDriverWait:
    # The page swaps the streamed turn for its own rendering: an element read in one poll may be
    # gone by the next look at it; the wait looks again.
    return WebDriverWait(driver, WAIT_SECONDS, ignored_exceptions=(StaleElementReferenceException,))


def _text(element: WebElement) -> str:
    # textContent, not .text: it also covers content a closed <details> hides.
    return " ".join((element.get_attribute("textContent") or "").split())


def _submit(driver, button_id: str) -> None:
    """Click a submit button and wait until the browser has left the page it was on and loaded the
    next. While the page is being replaced, Chromium may answer about the old button with an
    inspector error ("Node with given id does not belong to the document") rather than a stale
    element: wait through it."""
    button = driver.find_element(By.ID, button_id)
    button.click()
    leaving = WebDriverWait(driver, WAIT_SECONDS, ignored_exceptions=(WebDriverException,))
    leaving.until(EC.staleness_of(button))
    leaving.until(lambda d: d.execute_script("return document.readyState") == "complete")


def _send(driver, text: str) -> WebElement:
    """Type a message, send it, and return the newest assistant message once the reply is shown."""
    driver.find_element(By.NAME, "message").send_keys(text)
    _submit(driver, "send-button")
    _wait(driver).until(
        lambda d: any(text in _text(m) for m in d.find_elements(By.CSS_SELECTOR, "li.message.user"))
    )
    replies = _wait(driver).until(
        EC.presence_of_all_elements_located((By.CSS_SELECTOR, "li.message.assistant"))
    )
    return replies[-1]


def test_it_remembers_across_conversations_in_the_browser(browser, live_server):
    # 1. Sign up; the form lands on the chat page.
    browser.get(live_server.url + "/accounts/signup/")
    browser.find_element(By.NAME, "username").send_keys("alex")
    browser.find_element(By.NAME, "password1").send_keys(PASSWORD)
    browser.find_element(By.NAME, "password2").send_keys(PASSWORD)
    browser.find_element(By.NAME, "remember").click()  # consent to memory (not pre-ticked)
    _submit(browser, "signup-button")
    _wait(browser).until(EC.url_to_be(live_server.url + "/chat/"))
    _wait(browser).until(EC.presence_of_element_located((By.ID, "send-button")))

    # 2. Tell the assistant something; the (offline) reply is shown.
    reply = _send(browser, "Hi, I'm Alex, a backend developer. Remember that I'm vegetarian.")
    assert _text(reply.find_element(By.CSS_SELECTOR, ".content")).startswith(
        "No language model is configured"
    )

    # 3. End the conversation.
    _submit(browser, "end-button")
    badge = _wait(browser).until(
        EC.visibility_of_element_located((By.CSS_SELECTOR, ".chat-head .badge"))
    )
    assert "Ended" in badge.text
    assert not browser.find_elements(By.ID, "end-button")

    # 4. A new conversation recalls the preference, and the reply lists it under "Memories used".
    browser.find_element(By.ID, "new-conversation").click()
    _wait(browser).until(EC.url_to_be(live_server.url + "/chat/"))
    _wait(browser).until(EC.presence_of_element_located((By.NAME, "message")))
    reply = _send(browser, "Can you suggest something for dinner?")
    recalled = reply.find_element(By.CSS_SELECTOR, "details.recalled")
    assert recalled.get_attribute("open") is not None  # the newest reply shows what it used
    browser.save_screenshot(str(SCREENSHOT))
    recalls = [_text(li) for li in recalled.find_elements(By.CSS_SELECTOR, "li.recall")]
    assert any("User is vegetarian" in r for r in recalls), recalls

    # 5. "What I remember" shows the memory with the message it came from.
    browser.find_element(By.LINK_TEXT, "What I remember").click()
    _wait(browser).until(EC.url_to_be(live_server.url + "/memories/"))
    memories = _wait(browser).until(
        EC.presence_of_all_elements_located((By.CSS_SELECTOR, "li.memory"))
    )
    vegetarian = [
        m
        for m in memories
        if "User is vegetarian" in _text(m.find_element(By.CSS_SELECTOR, ".memory-text"))
    ]
    assert vegetarian, [_text(m) for m in memories]
    sources = [_text(q) for q in vegetarian[0].find_elements(By.CSS_SELECTOR, "blockquote.source")]
    assert any("Remember that I'm vegetarian" in s for s in sources), sources


def test_the_reply_streams_into_the_page_and_enter_sends(
    browser,
    live_server,
    llm_server,  # noqa: F811 (the fixture)
    settings,
):
    """Text arrives before the reply is complete; the finished turn then shows as the page renders
    it (Markdown, "Memories used"); Enter sends and Shift+Enter starts a new line."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    from memoryweb.ai.embeddings import embed_texts
    from tests.ai.openai_server import json_reply, streamed_chat_reply

    embed_texts(["warm up"])  # the model loads once per process: not inside the timed request
    settings.LLM_TIMEOUT_SECONDS = 10  # the scripted model pauses between its chunks
    llm_server.script_chat(
        streamed_chat_reply("Here is ", "**a first part**.", " And the rest, later.", delay=1.5),
        json_reply({"items": []}),
        streamed_chat_reply("Second ", "answer.", delay=1.0),
        json_reply({"items": []}),
    )
    browser.get(live_server.url + "/accounts/signup/")
    browser.find_element(By.NAME, "username").send_keys("sam")
    browser.find_element(By.NAME, "password1").send_keys(PASSWORD)
    browser.find_element(By.NAME, "password2").send_keys(PASSWORD)
    browser.find_element(By.NAME, "remember").click()
    _submit(browser, "signup-button")
    box = _wait(browser).until(EC.presence_of_element_located((By.NAME, "message")))

    box.send_keys("Dinner ideas?")
    ActionChains(browser).key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(Keys.SHIFT).perform()
    box.send_keys("Something quick.")
    assert box.get_attribute("value") == "Dinner ideas?\nSomething quick."
    box.send_keys(Keys.ENTER)

    partial = WebDriverWait(browser, 5, poll_frequency=0.1).until(
        lambda d: next(
            (
                _text(e)
                for e in d.find_elements(By.CSS_SELECTOR, "li.message.assistant .content.streaming")
                if "Here is" in _text(e)
            ),
            None,
        )
    )
    assert "the rest" not in partial  # shown while it is still being written
    _wait(browser).until(EC.url_matches(r"/chat/\d+/$"))
    reply = _wait(browser).until(
        lambda d: next(
            (
                m
                for m in d.find_elements(By.CSS_SELECTOR, "li.message.assistant")
                if "And the rest, later." in _text(m)
            ),
            None,
        )
    )
    assert reply.find_element(By.CSS_SELECTOR, ".content strong").text == "a first part"
    assert "Memories used" in _text(reply.find_element(By.CSS_SELECTOR, "details.recalled"))
    users = [
        m.find_element(By.CSS_SELECTOR, ".content").get_attribute("innerHTML")
        for m in browser.find_elements(By.CSS_SELECTOR, "li.message.user")
    ]
    assert any("Dinner ideas?<br>Something quick." in u for u in users), users  # Shift+Enter

    # In an open conversation the finished turn replaces the streamed one without leaving the page.
    url = browser.current_url
    browser.find_element(By.NAME, "message").send_keys("And dessert?", Keys.ENTER)
    _wait(browser).until(
        lambda d: any(
            "Second answer." in _text(m) and m.find_elements(By.CSS_SELECTOR, "details.recalled")
            for m in d.find_elements(By.CSS_SELECTOR, "li.message.assistant")
        )
    )
    assert browser.current_url == url
    assert len(browser.find_elements(By.CSS_SELECTOR, "li.message.assistant")) == 2


def test_the_seeds_three_scenarios_in_the_browser(browser, live_server):
    """On the defaults, offline: the diet, the project's problem and a term defined once are known
    in later conversations (the offline reply lists what was recalled)."""
    browser.get(live_server.url + "/accounts/signup/")
    browser.find_element(By.NAME, "username").send_keys("alexa")
    browser.find_element(By.NAME, "password1").send_keys(PASSWORD)
    browser.find_element(By.NAME, "password2").send_keys(PASSWORD)
    browser.find_element(By.NAME, "remember").click()
    _submit(browser, "signup-button")
    _wait(browser).until(EC.presence_of_element_located((By.ID, "send-button")))

    from tests.chat import seed

    for said in (seed.INTRO, seed.PROJECT, seed.TERM):
        _send(browser, said)
    _submit(browser, "end-button")

    scenarios = [
        (seed.DINNER, "User is vegetarian"),
        (seed.PROJECT_LATER, "User is struggling with database connection pooling"),
        (seed.TERM_LATER, "one-week research task"),
    ]
    for question, recalled in scenarios:
        browser.find_element(By.ID, "new-conversation").click()
        _wait(browser).until(EC.url_to_be(live_server.url + "/chat/"))
        _wait(browser).until(EC.presence_of_element_located((By.NAME, "message")))
        reply = _send(browser, question)
        assert recalled in _text(reply), (question, _text(reply))
