"""Personal API keys on the portal (/accounts/privacy/keys/) and in `manage.py apikey`: a key is
made with the password again, the scopes ticked and a lifetime, shown once and never again; it is
revoked with a POST (CSRF, the owner's only: anyone else's id is 404); both are in the access log,
without the key. And the migration that gave keys made before scopes every scope."""

from __future__ import annotations

import importlib
import io
import re
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AccessEvent, ApiKey
from accounts.scopes import ALL_SCOPES
from accounts.services import api_key_create, hash_key

URL = "/accounts/privacy/keys/"
PASSWORD = "alice-pass-123"
KEY = re.compile(r"mw_[A-Za-z0-9_-]{40,}")


def _create(client, password=PASSWORD, **fields):
    form = {"name": "laptop", "scopes": ["context:read"], "expires_in_days": "30"}
    form.update(fields)
    return client.post(URL, {**form, "password": password})


def _api(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_the_page_lists_my_keys_and_the_nav_links_it(alice_client, alice, bob):
    api_key_create(user=alice, name="phone", scopes=["chat", "context:read"])
    revoked, _ = api_key_create(user=alice, name="old laptop", scopes=["chat"])
    ApiKey.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    expired, _ = api_key_create(user=alice, name="script", scopes=["chat"], expires_in_days=1)
    ApiKey.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(hours=1))
    api_key_create(user=bob, name="bobs key", scopes=["chat"])

    page = alice_client.get(URL)

    assert page.status_code == 200
    html = page.content.decode()
    assert 'href="/accounts/privacy/keys/"' in html
    assert "phone" in html and "<code>chat</code>, <code>context:read</code>" in html
    assert "Revoked" in html and "Expired" in html and "Active" in html
    assert "bobs key" not in html
    for label in ("Read my memories, profile and context", "Forget everything"):
        assert label in html  # the scopes as labelled checkboxes
    assert 'name="password"' in html and 'value="365"' in html


def test_creating_a_key_shows_it_once_and_it_works_with_its_scopes_only(alice_client, alice):
    page = _create(alice_client, scopes=["context:read"], expires_in_days="30")

    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    [key] = KEY.findall(page.content.decode())
    api_key = ApiKey.objects.get(user=alice, name="laptop")
    assert api_key.hashed_key == hash_key(key) and key.startswith(api_key.prefix)
    assert api_key.scopes == ["context:read"]
    assert timedelta(days=29, hours=23) < api_key.expires_at - timezone.now() <= timedelta(days=30)
    # never again: not on the next visit, nor anywhere but in that one response
    assert key not in alice_client.get(URL).content.decode()
    assert not ApiKey.objects.filter(hashed_key=key).exists()

    assert _api(key).get("/api/v1/memories").status_code == 200
    refused = _api(key).post("/api/v1/chat", {"message": "Hi"}, format="json")
    assert refused.status_code == 403 and "chat" in refused.json()["error"]["message"]


def test_a_key_that_never_expires(alice_client, alice):
    _create(alice_client, expires_in_days="", scopes=["chat", "account:export"])
    api_key = ApiKey.objects.get(user=alice)
    assert api_key.expires_at is None and api_key.scopes == ["account:export", "chat"]


@pytest.mark.parametrize(
    "fields",
    [{"scopes": []}, {"scopes": ["admin"]}, {"name": ""}, {"expires_in_days": "7"}],
    ids=["no scope", "unknown scope", "no name", "other lifetime"],
)
def test_a_key_needs_a_name_known_scopes_and_a_listed_lifetime(alice_client, alice, fields):
    page = _create(alice_client, **fields)
    assert page.status_code == 200
    assert not KEY.findall(page.content.decode())
    assert not ApiKey.objects.filter(user=alice).exists()


def test_creating_a_key_needs_the_password_again(alice_client, alice):
    page = _create(alice_client, password="guess")
    assert page.status_code == 200 and "That is not your password." in page.content.decode()
    assert not KEY.findall(page.content.decode())
    assert not ApiKey.objects.filter(user=alice).exists()


def test_wrong_passwords_lock_out_the_key_page_like_the_others(alice, settings):
    client = Client(REMOTE_ADDR="203.0.113.21")
    client.force_login(alice)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _create(client, password="guess")
    response = _create(client, password=PASSWORD)
    assert response.status_code == 429
    assert not ApiKey.objects.filter(user=alice).exists()


def test_revoking_a_key_from_the_portal_stops_it_at_once(alice_client, alice):
    api_key, key = api_key_create(user=alice, name="phone", scopes=list(ALL_SCOPES))
    assert _api(key).get("/api/v1/memories").status_code == 200

    response = alice_client.post(f"{URL}{api_key.pk}/revoke/")

    assert response.status_code == 302 and response["Location"] == URL
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
    refused = _api(key).get("/api/v1/memories")
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "Invalid or revoked API key."
    assert f'action="{URL}{api_key.pk}/revoke/"' not in alice_client.get(URL).content.decode()


def test_creating_and_revoking_are_in_the_access_log_without_the_key(alice_client, alice):
    key = KEY.findall(_create(alice_client, name="laptop").content.decode())[0]
    api_key = ApiKey.objects.get(user=alice)
    alice_client.post(f"{URL}{api_key.pk}/revoke/")

    events = AccessEvent.objects.for_user(alice).filter(api_key=api_key).order_by("id")
    assert [(e.actor, e.purpose, e.items) for e in events] == [
        ("user", "API key created", 0),
        ("user", "API key revoked", 0),
    ]
    log = alice_client.get("/accounts/privacy/access-log/").content.decode()
    assert "API key created" in log and "API key revoked" in log
    assert f"laptop, key {api_key.prefix}…" in log
    assert key not in log
    api_log = _api(api_key_create(user=alice, scopes=["account:settings"])[1])
    assert key not in api_log.get("/api/v1/me/access-log").content.decode()


def test_bob_gets_404_revoking_alices_key(alice, bob_client):
    api_key, _ = api_key_create(user=alice, scopes=["chat"])
    assert bob_client.post(f"{URL}{api_key.pk}/revoke/").status_code == 404
    assert bob_client.post(f"{URL}999999/revoke/").status_code == 404
    api_key.refresh_from_db()
    assert api_key.revoked_at is None
    assert not AccessEvent.objects.filter(purpose="API key revoked").exists()


def test_revoking_needs_a_post_with_the_csrf_token(alice):
    api_key, _ = api_key_create(user=alice, scopes=["chat"])
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.get(f"{URL}{api_key.pk}/revoke/").status_code == 405
    assert client.post(f"{URL}{api_key.pk}/revoke/").status_code == 403
    creating = client.post(
        URL, {"name": "x", "scopes": ["chat"], "expires_in_days": "", "password": PASSWORD}
    )
    assert creating.status_code == 403
    api_key.refresh_from_db()
    assert api_key.revoked_at is None and ApiKey.objects.filter(user=alice).count() == 1


@pytest.mark.parametrize("url", [URL, f"{URL}1/revoke/"])
def test_anonymous_users_are_sent_to_log_in(db, url):
    response = Client().post(url) if "revoke" in url else Client().get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def _command(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("apikey", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_command_creates_a_key_with_scopes_and_a_lifetime(alice):
    out, err = _command(
        "create", "alice", "--name", "cron", "--scope", "chat", "--scope", "context:read",
        "--expires-days", "90",
    )  # fmt: skip
    key = out.strip()
    api_key = ApiKey.objects.get(hashed_key=hash_key(key))
    assert api_key.user == alice and api_key.name == "cron"
    assert api_key.scopes == ["chat", "context:read"]
    assert timedelta(days=89, hours=23) < api_key.expires_at - timezone.now()
    assert "chat, context:read" in err and "cannot be shown again" in err
    event = AccessEvent.objects.get(api_key=api_key)
    assert (event.actor, event.purpose) == ("admin", "API key created")
    assert _api(key).get("/api/v1/memories").status_code == 200

    listed, _ = _command("list", "alice")
    assert "cron" in listed and "active" in listed and "chat,context:read" in listed


def test_the_command_without_a_scope_gives_every_scope_and_no_expiry(alice):
    key = _command("create", "alice")[0].strip()
    api_key = ApiKey.objects.get(hashed_key=hash_key(key))
    assert api_key.scopes == sorted(ALL_SCOPES) and api_key.expires_at is None


@pytest.mark.parametrize(
    "args", [("--scope", "everything"), ("--expires-days", "0"), ("--expires-days", "soon")]
)
def test_the_command_refuses_unknown_scopes_and_bad_lifetimes(alice, args):
    with pytest.raises(CommandError):
        _command("create", "alice", *args)
    assert not ApiKey.objects.exists()


def test_the_command_revokes_by_prefix(alice):
    api_key, key = api_key_create(user=alice, scopes=["chat"])
    out, _ = _command("revoke", "alice", api_key.prefix)
    assert "Revoked 1 key(s)." in out
    assert _api(key).get("/api/v1/conversations").status_code == 401
    assert AccessEvent.objects.get(purpose="API key revoked").actor == "admin"
    with pytest.raises(CommandError):
        _command("revoke", "alice", api_key.prefix)


def _migrate(targets=None) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets or executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_keys_made_before_scopes_get_every_scope_of_that_time(django_user_model):
    user = django_user_model.objects.create_user("olga", password="olga-pass-123")
    _migrate([("accounts", "0006_user_time_zone")])
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO accounts_apikey (user_id, name, prefix, hashed_key, created_at)"
            " VALUES (%s, 'old', 'mw_old', %s, now())",
            [user.pk, hash_key("mw_old-key")],
        )
    _migrate()

    # Every scope there was when scopes came (0007); not those added since, such as importing a
    # history in bulk: a key never gains a power its owner did not tick.
    migration = importlib.import_module("accounts.migrations.0007_api_key_scopes")
    assert migration.EVERY_SCOPE_NOW == sorted(set(ALL_SCOPES) - {"account:import"})
    old = ApiKey.objects.get(user=user)
    assert old.scopes == migration.EVERY_SCOPE_NOW and old.expires_at is None
    assert old.status == ApiKey.Status.ACTIVE
    assert _api("mw_old-key").get("/api/v1/me/settings").status_code == 200
