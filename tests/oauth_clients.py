"""OAuth clients for tests: a client registered as an MCP client registers itself (RFC 7591, through
the real endpoint), a token for it under a user's grant (as the consent page makes one), PKCE pairs,
and an MCP session with the SDK's own client."""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import timedelta

import httpx2
from django.test import Client
from django.utils import timezone
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from oauth2_provider.models import AccessToken, Application, set_token_value

from accounts.connected_apps import app_grant
from accounts.models import RegisteredApp
from accounts.oauth import access_token_generate

LOOPBACK_REDIRECT = "http://127.0.0.1:33418/callback"


def register_client(
    name: str = "Claude", redirect_uri: str = LOOPBACK_REDIRECT
) -> tuple[Application, RegisteredApp]:
    response = Client().post(
        "/oauth/register/",
        {
            "client_name": name,
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    application = Application.objects.get(client_id=response.json()["client_id"])
    return application, application.registered_app


def oauth_token(
    user, app: RegisteredApp, scopes, *, grant=True, seconds: int = 3600, resource: str = ""
) -> str:
    """An access token of `app`'s OAuth client for `user` with `scopes` (and the user's grant)."""
    if grant:
        app_grant(user=user, app=app, scopes=list(scopes), method="test")
    raw = access_token_generate(None)
    token = AccessToken(
        user=user,
        application=app.oauth_application,
        scope=" ".join(scopes),
        expires=timezone.now() + timedelta(seconds=seconds),
        resource=[resource] if resource else [],
    )
    set_token_value(token, raw)
    token.save()
    return raw


def pkce_pair() -> tuple[str, str]:
    """A code verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def mcp_session(url: str, token: str | None, work, *, statuses: list | None = None):
    """Run `work(session, initialize_result)` in an MCP session of the SDK's client at `url`; the
    HTTP status of each answer goes into `statuses`."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def note(response):
        if statuses is not None:
            statuses.append(response.status_code)

    hooks = {"response": [note]}
    async with httpx2.AsyncClient(headers=headers, timeout=120, event_hooks=hooks) as http:
        async with streamable_http_client(url, http_client=http) as (read, write, *_):
            async with ClientSession(read, write) as session:
                initialized = await session.initialize()
                return await work(session, initialized)
