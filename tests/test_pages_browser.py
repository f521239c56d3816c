"""Every page says what it does, on a desktop and on a phone: axe-core (from the npm registry,
installed by `bin/dev test` into .venv/axe) finds no serious or critical violation at 1280 and 390 px,
nothing is wider than a 390 px screen, and the chat, What I remember and privacy pages are saved as
screenshots into docs/screenshots/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings

from tests.chat import test_browser as chat_browser

pytestmark = pytest.mark.browser

AXE = Path(settings.BASE_DIR) / ".venv" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
if not AXE.is_file():
    pytest.skip(
        f"the accessibility check needs axe-core at {AXE} (bin/dev test installs it with npm)",
        allow_module_level=True,
    )

browser = chat_browser.browser  # the same headless-Chromium fixture
SCREENSHOTS = Path(settings.BASE_DIR) / "docs" / "screenshots"
WIDTHS = {"desktop": 1280, "phone": 390}
PAGES = [
    ("/accounts/login/", None),
    ("/accounts/signup/", None),
    ("/chat/", None),
    ("conversation", "chat"),
    ("/memories/", "remembered"),
    ("memory", None),
    ("/memories/forget/?about=Lisbon", None),
    ("/accounts/privacy/settings/", None),
    ("/accounts/privacy/consent/", None),
    ("/accounts/privacy/export/", None),
    ("/accounts/privacy/access-log/", None),
    ("/accounts/privacy/apps/", None),
    ("/accounts/privacy/keys/", None),
    ("/accounts/privacy/import/", None),
    ("import", "import"),
    ("/accounts/privacy/forget/", "privacy"),
    ("/accounts/privacy/receipts/", None),
]
SERIOUS = ("serious", "critical")


@pytest.fixture
def alices_pages(alice, run_on_commit, live_server):
    """Alice with a conversation and memories, a deleted one's receipt, and an import waiting for
    her choice."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from chat.services import chat_turn, conversation_delete
    from imports.services import import_upload
    from memories.models import Memory
    from tests.imports.exports import as_json, as_zip, sample_chatgpt

    turn = run_on_commit(
        chat_turn,
        user=alice,
        conversation=None,
        text="I'm vegetarian, I live in Lisbon and we're using FastAPI for our invoicing app.",
    )
    run_on_commit(chat_turn, user=alice, conversation=turn.conversation, text="Dinner ideas?")
    deleted = run_on_commit(chat_turn, user=alice, conversation=None, text="I like jazz.")
    conversation_delete(user=alice, conversation=deleted.conversation, receipt=True)  # a receipt
    upload = SimpleUploadedFile("chatgpt.zip", as_zip(as_json(sample_chatgpt())))
    job, _ = run_on_commit(import_upload, user=alice, upload=upload, choose=True)
    return {
        "import": f"/accounts/privacy/import/{job.pk}/",
        "conversation": f"/chat/{turn.conversation.pk}/",
        "memory": f"/memories/{Memory.objects.filter(user=alice).first().pk}/",
    }


def _log_in(driver, live_server, client_cookie: str) -> None:
    driver.get(live_server.url + "/accounts/login/")
    driver.add_cookie({"name": settings.SESSION_COOKIE_NAME, "value": client_cookie, "path": "/"})


def _axe(driver) -> list[dict]:
    driver.execute_script(AXE.read_text())
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then(r => done(JSON.stringify(r.violations)));"
    )
    return json.loads(result)


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
def test_no_page_has_a_serious_accessibility_violation_or_overflows(
    browser, live_server, alice, alices_pages, width
):
    from django.test import Client

    client = Client()
    client.force_login(alice)
    browser.set_window_size(width, 900)
    found = {}
    for path, shot in PAGES:
        url = alices_pages.get(path, path)
        if path.startswith("/accounts/") and path in ("/accounts/login/", "/accounts/signup/"):
            browser.delete_all_cookies()
        else:
            _log_in(browser, live_server, client.cookies[settings.SESSION_COOKIE_NAME].value)
        browser.get(live_server.url + url)
        problems = [
            f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
            for v in _axe(browser)
            if v["impact"] in SERIOUS
        ]
        wider = browser.execute_script("return document.documentElement.scrollWidth")
        if wider > width + 1:
            problems.append(f"the page is {wider}px wide on a {width}px screen")
        if problems:
            found[url] = problems
        if shot:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            name = f"{shot}-{'phone' if width == 390 else 'desktop'}.png"
            browser.save_screenshot(str(SCREENSHOTS / name))
    assert found == {}, json.dumps(found, indent=1, ensure_ascii=False)
