"""Connecting an MCP client end to end, as Claude Desktop does, in headless Chromium: the SDK's own
OAuth client meets the 401, finds the metadata, registers itself (RFC 7591), and sends the user to
the authorize page with PKCE; the user logs in, reads the consent page and grants only reading; the
browser comes back to a loopback URI this test listens on; the SDK exchanges the code for a token
and the MCP call goes through. The grant is on the Apps page, and revoking it there ends the token.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from django.conf import settings
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientMetadata
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from accounts.models import AccessEvent, AppGrant, RegisteredApp
from tests.chat import test_browser as chat_browser
from tests.factories import make_memory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

browser = chat_browser.browser  # the same headless-Chromium fixture
SCREENSHOT = Path(settings.BASE_DIR) / "docs" / "screenshots" / "consent-desktop.png"
AXE = Path(settings.BASE_DIR) / ".venv" / "axe" / "node_modules" / "axe-core" / "axe.min.js"


class _Callback(BaseHTTPRequestHandler):
    """The loopback redirect URI a native MCP client listens on (RFC 8252)."""

    received: queue.Queue

    def do_GET(self):
        self.received.put(parse_qs(urlsplit(self.path).query))
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"Connected. You can close this window.")

    def log_message(self, *args):
        pass


@pytest.fixture
def callback():
    received: queue.Queue = queue.Queue()
    handler = type("Callback", (_Callback,), {"received": received})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/callback", received
    server.shutdown()
    server.server_close()


class _Storage:
    """The client's token storage (the SDK's TokenStorage protocol), in memory."""

    tokens = client_info = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


def _consent_in_the_browser(driver, live_server, url: str) -> None:
    """What the user does: log in, read the consent page, keep only reading, allow."""
    driver.get(url)
    chat_browser._wait(driver).until(EC.presence_of_element_located((By.ID, "login-button")))
    driver.find_element(By.NAME, "username").send_keys("alice")
    driver.find_element(By.NAME, "password").send_keys("alice-pass-123")
    chat_browser._submit(driver, "login-button")
    chat_browser._wait(driver).until(EC.presence_of_element_located((By.ID, "allow-button")))
    page = chat_browser._text(driver.find_element(By.CSS_SELECTOR, "main"))
    assert "Connect memoryweb test client (" in page and "This app registered itself" in page
    assert "127.0.0.1" in page and "Read my memories, profile and context" in page
    if AXE.is_file():  # the accessibility check of tests/test_pages_browser.py, where installed
        from tests.test_pages_browser import SERIOUS, _axe

        assert [v["id"] for v in _axe(driver) if v["impact"] in SERIOUS] == []
    driver.find_element(By.CSS_SELECTOR, "input[value='memories:write']").click()  # untick
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOT))
    driver.find_element(By.ID, "allow-button").click()


def test_an_mcp_client_connects_with_oauth_in_the_browser(browser, live_server, alice, callback):
    make_memory(alice, "User lives in Lisbon", subject="location", embed=True)
    redirect_uri, received = callback
    storage = _Storage()

    async def redirect_handler(url: str) -> None:
        await asyncio.to_thread(_consent_in_the_browser, browser, live_server, url)

    async def callback_handler() -> AuthorizationCodeResult:
        query = await asyncio.to_thread(received.get, True, 60)
        assert "error" not in query, query
        return AuthorizationCodeResult(
            code=query["code"][0], state=query["state"][0], iss=query.get("iss", [None])[0]
        )

    provider = OAuthClientProvider(
        server_url=live_server.url + "/mcp",
        client_metadata=OAuthClientMetadata(
            client_name="memoryweb test client",
            redirect_uris=[redirect_uri],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )

    async def connect():
        async with httpx2.AsyncClient(auth=provider, timeout=120) as http:
            async with streamable_http_client(live_server.url + "/mcp", http_client=http) as (
                read,
                write,
                *_,
            ):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    return (
                        await session.call_tool("get_context", {"query": "Where do I live?"}),
                        await session.call_tool("add_memory", {"text": "User plays chess"}),
                    )

    context, added = asyncio.run(connect())

    assert not context.is_error and "User lives in Lisbon" in context.content[0].text
    assert added.is_error and "memories:write" in added.content[0].text  # it was unticked
    app = RegisteredApp.objects.get(self_registered=True)
    assert AppGrant.objects.get(user=alice, app=app, revoked_at__isnull=True).scopes == [
        "context:read"
    ]
    assert AccessEvent.objects.filter(user=alice, app=app, purpose="MCP get_context").exists()
    token = storage.tokens.access_token
    assert token.startswith("mwoat_") and storage.tokens.scope == "context:read"

    # The Apps page lists the grant; revoking it there ends the token at once.
    browser.get(live_server.url + "/accounts/privacy/apps/")
    row = browser.find_element(By.ID, f"app-{app.pk}")
    assert app.name in chat_browser._text(row) and "context:read" in chat_browser._text(row)
    button = row.find_element(By.CSS_SELECTOR, "button[type=submit]")
    button.click()
    chat_browser._wait(browser).until(EC.staleness_of(button))
    assert app.name + " no longer has access" in chat_browser._text(
        browser.find_element(By.TAG_NAME, "body")
    )
    answer = httpx2.post(
        live_server.url + "/mcp",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
    )
    assert answer.status_code == 401, answer.text
    assert json.loads(answer.text)["error"] == "invalid_token"
