"""Who may call what, for every endpoint: nobody anonymous (401); the owner (2xx); another user gets
404 for the owner's objects and none of them in lists; an app without a grant gets 404 everywhere;
an app whose grant lacks the endpoint's scope gets 403 (endpoints for the user alone are never for
apps); a personal key gets exactly what its scopes allow."""

from __future__ import annotations

import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from accounts.connected_apps import app_grant, app_revoke
from accounts.models import AppGrant
from tests.api.conftest import app_client
from tests.imports.exports import as_json, sample_chatgpt

READ, WRITE = "context:read", "memories:write"  # the scopes an app may hold
MANAGE, CHAT = "memories:manage", "chat"
SETTINGS, CONSENT, EXPORT = "account:settings", "account:consent", "account:export"
ERASE, KEYS, IMPORT = "account:erase", "account:keys", "account:import"
# a file to upload, sent as multipart (see _call)
UPLOAD = {"file": ("conversations.json", as_json(sample_chatgpt()))}

# (method, url, body, the owner's status, the scope it requires of a key or an app)
ENDPOINTS = [
    ("post", "/api/v1/chat", {"message": "Hello"}, 200, CHAT),
    ("get", "/api/v1/conversations", None, 200, CHAT),
    ("get", "/api/v1/conversations/{conversation}", None, 200, CHAT),
    ("get", "/api/v1/conversations/{conversation}/messages", None, 200, CHAT),
    ("post", "/api/v1/conversations/{conversation}/end", None, 200, CHAT),
    ("delete", "/api/v1/conversations/{conversation}", None, 200, CHAT),
    ("get", "/api/v1/messages/{message}", None, 200, CHAT),
    ("get", "/api/v1/messages/{reply}", None, 200, CHAT),
    ("get", "/api/v1/memories", None, 200, READ),
    ("post", "/api/v1/memories", {"kind": "fact", "text": "User likes green tea"}, 201, MANAGE),
    ("get", "/api/v1/memories/search?q=Lisbon", None, 200, READ),
    ("get", "/api/v1/memories/{memory}", None, 200, READ),
    ("patch", "/api/v1/memories/{memory}", {"use_in_context": False}, 200, MANAGE),
    ("delete", "/api/v1/memories/{memory}", None, 204, MANAGE),
    ("get", "/api/v1/memories/{memory}/history", None, 200, MANAGE),  # earlier texts: not for apps
    ("post", "/api/v1/memories/{memory}/report", {"reason": "wrong"}, 200, MANAGE),
    ("post", "/api/v1/context", {"query": "Where do I live?"}, 200, READ),
    ("get", "/api/v1/context/profile", None, 200, READ),
    ("post", "/api/v1/context/push", {"text": "User plays chess on Sundays"}, 201, WRITE),
    ("get", "/api/v1/me/settings", None, 200, SETTINGS),
    ("patch", "/api/v1/me/settings", {"use_past_chats": False}, 200, SETTINGS),
    ("get", "/api/v1/me/consents", None, 200, CONSENT),
    ("post", "/api/v1/me/consents", {"purpose": "sensitive:health", "granted": True}, 200, CONSENT),
    ("get", "/api/v1/me/exports", None, 200, EXPORT),
    ("post", "/api/v1/me/exports", None, 202, EXPORT),
    ("get", "/api/v1/me/exports/{export}", None, 200, EXPORT),
    ("get", "/api/v1/me/exports/{export}/download", None, 200, EXPORT),
    ("get", "/api/v1/me/access-log", None, 200, SETTINGS),
    ("post", "/api/v1/me/forget", {"confirmation": "forget everything"}, 200, ERASE),
    ("get", "/api/v1/me/receipts", None, 200, ERASE),
    ("get", "/api/v1/me/receipts/{receipt}", None, 200, ERASE),
    ("get", "/api/v1/me/keys", None, 200, KEYS),
    ("post", "/api/v1/me/keys/{key}/revoke", None, 200, KEYS),
    ("get", "/api/v1/me/imports", None, 200, IMPORT),
    ("post", "/api/v1/me/imports", UPLOAD, 202, IMPORT),
    ("get", "/api/v1/me/imports/{import}", None, 200, IMPORT),
    ("get", "/api/v1/me/imports/{import}/conversations", None, 200, IMPORT),
    ("post", "/api/v1/me/imports/{import}/start", {"conversations": [0]}, 202, IMPORT),
    ("post", "/api/v1/me/imports/{import}/cancel", None, 200, IMPORT),
    ("delete", "/api/v1/me/imports/{import}", None, 200, IMPORT),
]
OBJECT_ENDPOINTS = [e for e in ENDPOINTS if "{" in e[1]]
IDS = [f"{m} {u}" for m, u, *_ in ENDPOINTS]


def _call(client, method, url, body, data):
    url = url.format(**data)
    if body is None:
        return getattr(client, method)(url)
    if body is UPLOAD:  # a new file object for each call: one is read once
        files = {k: SimpleUploadedFile(name, content) for k, (name, content) in body.items()}
        return getattr(client, method)(url, files, format="multipart")
    return getattr(client, method)(url, body, format="json")


def test_every_endpoint_is_listed_here():
    from django.urls import get_resolver

    # "": the 404
    routes = {str(p.pattern) for p in get_resolver("memoryweb.api_urls").url_patterns} - {""}
    tested = {u.removeprefix("/api/v1/").split("?")[0] for _, u, *_ in ENDPOINTS}
    as_routes = {
        r.replace("<int:conversation_id>", "{conversation}")
        .replace("<int:message_id>", "{message}")
        .replace("<int:memory_id>", "{memory}")
        .replace("<int:export_id>", "{export}")
        .replace("<int:key_id>", "{key}")
        .replace("<uuid:receipt_id>", "{receipt}")
        .replace("<int:import_id>", "{import}")
        for r in routes
    }
    assert as_routes <= tested


@pytest.mark.parametrize("method, url, body, owner_status, scope", ENDPOINTS, ids=IDS)
def test_anonymous_gets_401(db, method, url, body, owner_status, scope):
    ids = {
        "conversation": 1,
        "message": 1,
        "reply": 1,
        "memory": 1,
        "export": 1,
        "key": 1,
        "import": 1,
    }
    response = _call(APIClient(), method, url, body, {**ids, "receipt": uuid.uuid4()})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("method, url, body, owner_status, scope", ENDPOINTS, ids=IDS)
def test_the_owner_gets_it(alice_api, alice_data, method, url, body, owner_status, scope):
    response = _call(alice_api, method, url, body, alice_data)
    assert response.status_code == owner_status, response.content


@pytest.mark.parametrize(
    "method, url, body, owner_status, scope",
    OBJECT_ENDPOINTS,
    ids=[f"{m} {u}" for m, u, *_ in OBJECT_ENDPOINTS],
)
def test_another_user_gets_404_for_the_owners_objects(
    alice_data, bob_api, method, url, body, owner_status, scope
):
    response = _call(bob_api, method, url, body, alice_data)
    assert response.status_code == 404, response.content
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "url, key",
    [
        ("conversations", "id"),
        ("memories", "id"),
        ("me/exports", "id"),
        ("me/imports", "id"),
        ("context/profile", "id"),
    ],
)
def test_another_user_sees_none_of_the_owners_objects_in_lists(alice_data, bob_api, url, key):
    response = bob_api.get(f"/api/v1/{url}")
    assert response.status_code == 200 and response.json()["results"] == []


def test_another_user_finds_nothing_of_the_owners_by_search_or_context(alice_data, bob_api):
    assert bob_api.get("/api/v1/memories/search?q=Lisbon").json()["results"] == []
    assert bob_api.post("/api/v1/context", {"query": "Lisbon"}, format="json").json()["items"] == []


@pytest.mark.parametrize("method, url, body, owner_status, scope", ENDPOINTS, ids=IDS)
def test_an_app_without_a_grant_gets_404(
    alice_data, calendar, bob, method, url, body, owner_status, scope
):
    app, secret = calendar
    app_grant(user=bob, app=app, scopes=[READ, WRITE])  # bob's grant gives nothing of alice's
    response = _call(app_client(secret, "alice"), method, url, body, alice_data)
    assert response.status_code == 404, response.content
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("method, url, body, owner_status, scope", ENDPOINTS, ids=IDS)
def test_an_app_with_a_revoked_grant_gets_404(
    alice, alice_data, calendar, method, url, body, owner_status, scope
):
    app, secret = calendar
    app_revoke(user=alice, grant=app_grant(user=alice, app=app, scopes=[READ, WRITE]))
    response = _call(app_client(secret, "alice"), method, url, body, alice_data)
    assert response.status_code == 404, response.content


@pytest.mark.parametrize("granted", [[READ], [WRITE], [READ, WRITE]])
@pytest.mark.parametrize("method, url, body, owner_status, scope", ENDPOINTS, ids=IDS)
def test_an_app_gets_what_its_scopes_allow_and_403_for_the_rest(
    alice, alice_data, calendar, granted, method, url, body, owner_status, scope
):
    app, secret = calendar
    app_grant(user=alice, app=app, scopes=granted)
    response = _call(app_client(secret, "alice"), method, url, body, alice_data)
    if scope in granted:
        assert response.status_code == owner_status, response.content
    else:
        assert response.status_code == 403, response.content
        assert response.json()["error"]["code"] == "permission_denied"


def test_an_app_reaches_no_other_users_objects_through_its_grant(alice_data, calendar, bob):
    app, secret = calendar
    app_grant(user=bob, app=app, scopes=[READ])
    client = app_client(secret, "bob")
    assert client.get(f"/api/v1/memories/{alice_data['memory']}").status_code == 404
    assert client.get("/api/v1/memories").json()["results"] == []


@pytest.mark.parametrize(
    "secret, username, status",
    [
        ("mwapp_wrong", "alice", 401),
        (None, None, 401),
        (None, "", 401),
        (None, "nul\x00", 401),
        (None, "nobody", 404),
        (None, "ALICE", 404),
    ],
)
def test_app_credentials(alice, calendar, secret, username, status):
    app, real = calendar
    app_grant(user=alice, app=app, scopes=[READ])
    response = app_client(secret or real, username).get("/api/v1/memories")
    assert response.status_code == status
    assert "error" in response.json()


def test_a_disabled_app_gets_401(alice, calendar):
    from django.utils import timezone

    app, secret = calendar
    app_grant(user=alice, app=app, scopes=[READ])
    app.disabled_at = timezone.now()
    app.save()
    assert app_client(secret, "alice").get("/api/v1/memories").status_code == 401


@pytest.mark.parametrize("method", ["get", "post", "delete"])
@pytest.mark.parametrize(
    "url", ["/api/v1/nothing", "/api/v1/memories/abc", "/api/v1/conversations/1.5/end"]
)
def test_an_unknown_api_url_is_a_404_in_the_error_shape(alice_api, method, url):
    response = getattr(alice_api, method)(url)
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_a_session_needs_its_csrf_token(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.get("/api/v1/memories").status_code == 200
    refused = client.post(
        "/api/v1/memories", {"text": "User likes tea"}, content_type="application/json"
    )
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]["message"]
    client.get("/accounts/privacy/consent/")
    token = client.cookies["csrftoken"].value
    accepted = client.post(
        "/api/v1/memories",
        {"text": "User likes tea"},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert accepted.status_code == 201


def test_destructive_calls_from_a_session_need_the_password_again(alice, alice_client):
    from accounts.models import User
    from memories.models import Memory
    from tests.factories import make_memory

    memory = make_memory(alice, "User likes tea")
    url = f"/api/v1/memories/{memory.pk}"
    assert alice_client.delete(url, content_type="application/json").status_code == 403
    wrong = alice_client.delete(url, {"password": "guess"}, content_type="application/json")
    assert wrong.status_code == 403 and "password" in wrong.json()["error"]["message"]
    assert (
        alice_client.delete(
            url, {"password": "alice-pass-123"}, content_type="application/json"
        ).status_code
        == 204
    )
    assert not Memory.objects.filter(pk=memory.pk).exists()

    forget = {"confirmation": "forget everything", "delete_account": True}
    assert (
        alice_client.post("/api/v1/me/forget", forget, content_type="application/json").status_code
        == 403
    )
    assert User.objects.filter(pk=alice.pk).exists()


def test_an_active_grant_is_replaced_by_a_new_one(alice, calendar):
    app, _ = calendar
    app_grant(user=alice, app=app, scopes=[READ])
    app_grant(user=alice, app=app, scopes=[WRITE])
    assert list(AppGrant.objects.for_user(alice).active().values_list("scopes", flat=True)) == [
        [WRITE]
    ]
