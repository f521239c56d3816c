"""OAuth 2.1 for MCP clients, through the real endpoints: open but limited registration, the consent
page (the client named as its own claim, the scopes in their labels, fewer may be granted) making
the user's AppGrant, PKCE S256 only, exact redirect URIs, tokens that act under the grant and end
with it, and the Apps page."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from oauth2_provider.models import AccessToken, RefreshToken

from accounts.models import AppGrant, ConsentRecord, RegisteredApp
from tests.oauth_clients import LOOPBACK_REDIRECT, oauth_token, pkce_pair, register_client

BOTH = "context:read memories:write"


@pytest.fixture
def claude(db):
    return register_client("Claude")


def _authorize_query(application, challenge, **extra) -> dict:
    return {
        "response_type": "code",
        "client_id": application.client_id,
        "redirect_uri": LOOPBACK_REDIRECT,
        "scope": BOTH,
        "state": "st4te",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "resource": "http://testserver/",
        **extra,
    }


def _consent(client, application, challenge, *, scopes, allow=True, **extra):
    """GET the consent page, then answer it with `scopes` ticked (allow or deny)."""
    query = _authorize_query(application, challenge, **extra)
    page = client.get("/oauth/authorize/", query)
    assert page.status_code == 200, page.content
    answer = {**query, "scopes": scopes}
    if allow:
        answer["allow"] = "on"
    return page, client.post("/oauth/authorize/", answer)


def _code(response) -> str:
    assert response.status_code == 302, response.content
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == LOOPBACK_REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["st4te"] and query["iss"] == ["http://testserver"]
    return query["code"][0]


def _token(application, code, verifier, **extra):
    return Client().post(
        "/oauth/token/",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": LOOPBACK_REDIRECT,
            "client_id": application.client_id,
            "code_verifier": verifier,
            "resource": "http://testserver/",
            **extra,
        },
    )


def test_the_consent_page_names_the_client_and_grants_only_what_was_ticked(
    alice, alice_client, claude
):
    application, app = claude
    verifier, challenge = pkce_pair()

    page, answer = _consent(alice_client, application, challenge, scopes=["context:read"])

    text = page.content.decode()
    assert f"Connect {app.name} to your memory?" in text and "registered itself" in text
    assert "127.0.0.1:33418" in text  # where it sends you back
    assert "Read my memories, profile and context" in text
    assert "Add facts and observations to my memory, and forget one memory when I ask" in text
    token = _token(application, _code(answer), verifier)
    assert token.status_code == 200, token.content
    body = token.json()
    assert body["access_token"].startswith("mwoat_") and body["scope"] == "context:read"
    grant = AppGrant.objects.get(user=alice, app=app, revoked_at__isnull=True)
    assert grant.scopes == ["context:read"]
    consent = ConsentRecord.objects.filter(user=alice, purpose=f"app:{app.name}").latest("id")
    assert consent.granted and consent.method == "OAuth consent page: context:read"
    assert AccessToken.objects.get(user=alice).token == ""  # stored as its SHA-256 only

    api = Client(HTTP_AUTHORIZATION=f"Bearer {body['access_token']}")
    assert api.get("/api/v1/memories").status_code == 200
    push = api.post("/api/v1/context/push", {"text": "User sings"}, content_type="application/json")
    assert push.status_code == 403


def test_denying_or_ticking_nothing_grants_nothing(alice, alice_client, claude):
    application, app = claude
    _, challenge = pkce_pair()

    _, nothing = _consent(alice_client, application, challenge, scopes=[])
    _, denied = _consent(alice_client, application, challenge, scopes=["context:read"], allow=False)

    assert nothing.status_code == 200 and "Tick at least one" in nothing.content.decode()
    assert denied.status_code == 302
    assert parse_qs(urlsplit(denied["Location"]).query)["error"] == ["access_denied"]
    assert not AppGrant.objects.filter(app=app).exists()


def test_a_wrong_code_verifier_gets_no_token(alice, alice_client, claude):
    application, _ = claude
    _, challenge = pkce_pair()
    other_verifier, _ = pkce_pair()
    _, answer = _consent(alice_client, application, challenge, scopes=["context:read"])

    token = _token(application, _code(answer), other_verifier)

    assert token.status_code == 400 and token.json()["error"] == "invalid_grant"
    assert not AccessToken.objects.filter(user=alice).exists()


@pytest.mark.parametrize(
    "extra",
    [
        {"code_challenge_method": "plain"},
        {"code_challenge": "", "code_challenge_method": ""},
        {"response_type": "token"},
    ],
    ids=["plain-pkce", "no-pkce", "implicit"],
)
def test_anything_but_the_code_grant_with_pkce_s256_is_refused(alice_client, claude, extra):
    application, _ = claude
    _, challenge = pkce_pair()

    response = alice_client.get(
        "/oauth/authorize/", _authorize_query(application, challenge, **extra)
    )

    assert response.status_code == 302
    query = parse_qs(urlsplit(response["Location"]).query)
    assert query["error"][0] in ("invalid_request", "unauthorized_client")
    assert "code" not in query


def test_a_redirect_uri_it_did_not_register_is_an_error_page_never_a_redirect(alice_client, claude):
    application, _ = claude
    _, challenge = pkce_pair()
    query = _authorize_query(application, challenge, redirect_uri="http://127.0.0.1:9999/steal")

    response = alice_client.get("/oauth/authorize/", query)

    assert response.status_code == 400
    assert "This app cannot connect" in response.content.decode()


def test_signing_in_comes_first(claude):
    application, _ = claude
    _, challenge = pkce_pair()
    response = Client().get("/oauth/authorize/", _authorize_query(application, challenge))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_an_expired_token_or_one_for_another_resource_is_401(alice, claude):
    _, app = claude
    expired = oauth_token(alice, app, ["context:read"], seconds=-1)
    elsewhere = oauth_token(alice, app, ["context:read"], resource="https://elsewhere.example/")

    for token in (expired, elsewhere):
        response = Client(HTTP_AUTHORIZATION=f"Bearer {token}").get("/api/v1/memories")
        assert response.status_code == 401
        assert response.json()["error"]["message"] == "Invalid, expired or revoked access token."


def test_revoking_on_the_apps_page_ends_its_tokens_and_only_its_user_sees_it(
    alice, alice_client, bob_client, claude
):
    application, app = claude
    verifier, challenge = pkce_pair()
    _, answer = _consent(alice_client, application, challenge, scopes=BOTH.split())
    tokens = _token(application, _code(answer), verifier).json()

    alices_page = alice_client.get("/accounts/privacy/apps/").content.decode()
    assert app.name in alices_page and "context:read, memories:write" in alices_page
    assert app.name not in bob_client.get("/accounts/privacy/apps/").content.decode()
    grant = AppGrant.objects.get(user=alice, app=app)
    assert alice_client.post(f"/accounts/privacy/apps/{grant.pk}/revoke/").status_code == 302

    api = Client(HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    assert api.get("/api/v1/memories").status_code == 401
    assert not AccessToken.objects.filter(user=alice).exists()
    assert RefreshToken.objects.get(user=alice).revoked is not None
    refreshed = Client().post(
        "/oauth/token/",
        {
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": application.client_id,
        },
    )
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
    assert (
        not ConsentRecord.objects.filter(user=alice, purpose=f"app:{app.name}").latest("id").granted
    )


def test_a_self_registered_client_cannot_be_granted_on_the_apps_page(alice, alice_client, claude):
    _, app = claude
    alice_client.post("/accounts/privacy/apps/grant/", {"app": app.pk, "scopes": ["context:read"]})
    assert not AppGrant.objects.filter(user=alice, app=app).exists()


# --- registration ---------------------------------------------------------------------------------


def _register(body, **headers):
    return Client().post("/oauth/register/", body, content_type="application/json", **headers)


@pytest.mark.parametrize(
    "uri",
    ["https://claude.ai/api/mcp/auth_callback", "http://localhost:6274/cb", "http://[::1]:80/"],
)
def test_https_and_loopback_redirect_uris_register(db, uri):
    response = _register({"client_name": "Inspector", "redirect_uris": [uri]})
    assert response.status_code == 201, response.content
    app = RegisteredApp.objects.get(oauth_application__client_id=response.json()["client_id"])
    assert app.self_registered and app.name.startswith("Inspector (")


@pytest.mark.parametrize(
    "body, error",
    [
        ({"redirect_uris": ["http://example.com/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["javascript:alert(1)"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://example.com/cb#frag"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://user:pw@example.com/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": []}, "invalid_redirect_uri"),
        ({"redirect_uris": [f"https://e.com/{i}" for i in range(6)]}, "invalid_redirect_uri"),
        (
            {"redirect_uris": ["https://e.com/cb"], "client_name": "x" * 81},
            "invalid_client_metadata",
        ),
        (
            {"redirect_uris": ["https://e.com/cb"], "grant_types": ["client_credentials"]},
            "invalid_client_metadata",
        ),
        ({"redirect_uris": ["https://e.com/cb"], "scope": "chat"}, "invalid_client_metadata"),
        (["not", "an", "object"], "invalid_client_metadata"),
    ],
    ids=[
        "http-elsewhere",
        "javascript",
        "fragment",
        "userinfo",
        "none",
        "too-many",
        "long-name",
        "client-credentials",
        "user-scope",
        "array",
    ],
)
def test_registration_refuses_what_it_does_not_serve(db, body, error):
    response = _register(body)
    assert response.status_code == 400 and response.json()["error"] == error
    assert not RegisteredApp.objects.exists()


def test_registration_refuses_junk_and_huge_bodies(db):
    junk = Client().post("/oauth/register/", "{nope", content_type="application/json")
    huge = _register({"redirect_uris": ["https://e.com/cb"], "client_name": "x", "pad": "y" * 9000})
    assert junk.status_code == 400 and huge.status_code == 413
    assert not RegisteredApp.objects.exists()


def test_registration_is_limited_per_address_and_hour(db, settings):
    settings.OAUTH_REGISTRATION_LIMIT_PER_HOUR = 2
    body = {"client_name": "Spam", "redirect_uris": ["https://e.com/cb"]}
    statuses = [_register(body).status_code for _ in range(3)]
    other = _register(body, REMOTE_ADDR="10.0.0.9")
    assert statuses == [201, 201, 429] and other.status_code == 201
    assert RegisteredApp.objects.count() == 3


def test_a_client_may_not_change_its_redirect_uris_after_registering(db):
    registered = _register({"client_name": "A", "redirect_uris": ["https://e.com/cb"]}).json()
    response = Client().put(
        urlsplit(registered["registration_client_uri"]).path,
        {"redirect_uris": ["http://evil.example/cb"]},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {registered['registration_access_token']}",
    )
    assert response.status_code == 405
