"""Password guessing is not free: wrong passwords on the login page, the admin's login and every
password re-check lock the address and the username out for a while (django-axes), with a clear
message; wrong API keys are refused per address; sign-ups per address are limited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.utils import timezone

from accounts.scopes import ALL_SCOPES
from accounts.services import api_key_create
from memories.models import Memory
from tests.factories import make_memory

PASSWORD = "alice-pass-123"  # tests/conftest.py


def _login(client: Client, password: str, username: str = "alice", url="/accounts/login/"):
    return client.post(url, {"username": username, "password": password})


def _lapse() -> None:
    """As if LOGIN_LOCKOUT_MINUTES had passed since the attempts."""
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))


def test_five_wrong_passwords_lock_the_login_even_for_the_right_one(alice, settings):
    client = Client(REMOTE_ADDR="203.0.113.5")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(client, "guess").status_code == 200  # the form again, with its error
    assert _login(client, "guess").status_code == 429  # the last one allowed: now locked out
    response = _login(client, PASSWORD)
    assert response.status_code == 429 and "Too many wrong passwords" in response.content.decode()
    assert "15 minutes" in response.content.decode() and response["Retry-After"] == "900"
    assert "_auth_user_id" not in client.session


def test_the_lock_out_lifts_after_its_time(alice, settings):
    client = Client(REMOTE_ADDR="203.0.113.5")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(client, "guess")
    _lapse()
    assert _login(client, PASSWORD).status_code == 302


def test_guessing_one_username_from_many_addresses_locks_it(alice, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        _login(Client(REMOTE_ADDR=f"198.51.100.{n}"), "guess")
    assert _login(Client(REMOTE_ADDR="192.0.2.1"), PASSWORD).status_code == 429


def test_an_address_guessing_locks_only_itself_and_that_username(alice, bob, settings):
    guesser = Client(REMOTE_ADDR="203.0.113.5")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(guesser, "guess")
    assert _login(Client(REMOTE_ADDR="192.0.2.1"), "bob-pass-123", "bob").status_code == 302


def test_the_admin_login_counts_too(alice, settings):
    alice.is_staff = True
    alice.save(update_fields=["is_staff"])
    client = Client(REMOTE_ADDR="203.0.113.6")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(client, "guess", url="/admin/login/")
    assert _login(client, PASSWORD, url="/admin/login/").status_code == 429


def test_a_password_recheck_counts_and_then_refuses(alice, settings):
    memory = make_memory(alice, "User lives in Lisbon")
    client = Client(REMOTE_ADDR="203.0.113.7")
    client.force_login(alice)
    url = f"/memories/{memory.pk}/delete/"
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post(url, {"password": "guess", "confirmation": "delete"})
        assert response.status_code == 200
    client.post(url, {"password": "guess", "confirmation": "delete"})
    response = client.post(url, {"password": PASSWORD, "confirmation": "delete"})
    assert response.status_code == 429
    assert Memory.objects.filter(pk=memory.pk).exists()


def test_the_api_password_recheck_is_json(alice, settings):
    client = Client(REMOTE_ADDR="203.0.113.8")
    client.force_login(alice)
    body = {"confirmation": "forget everything", "password": "guess"}
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert (
            client.post("/api/v1/me/forget", body, content_type="application/json").status_code
            == 403
        )
    client.post("/api/v1/me/forget", body, content_type="application/json")
    body["password"] = PASSWORD
    response = client.post("/api/v1/me/forget", body, content_type="application/json")
    assert response.status_code == 429 and response.json()["error"]["code"] == "locked_out"


def test_wrong_api_keys_from_one_address_are_refused_for_a_while(alice, settings):
    settings.API_KEY_FAILURE_LIMIT = 3
    _, key = api_key_create(user=alice, scopes=ALL_SCOPES)
    for n in range(3):
        assert (
            Client(REMOTE_ADDR="203.0.113.9")
            .get("/api/v1/memories", HTTP_AUTHORIZATION=f"Bearer mw_wrong{n}")
            .status_code
            == 401
        )
    refused = Client(REMOTE_ADDR="203.0.113.9").get(
        "/api/v1/memories", HTTP_AUTHORIZATION=f"Bearer {key}"
    )
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "throttled"
    other = Client(REMOTE_ADDR="192.0.2.9").get(
        "/api/v1/memories", HTTP_AUTHORIZATION=f"Bearer {key}"
    )
    assert other.status_code == 200


def test_sign_ups_from_one_address_are_limited(db, settings):
    settings.SIGNUP_LIMIT_PER_HOUR = 2
    client = Client(REMOTE_ADDR="203.0.113.10")
    for n in range(2):
        form = {
            "username": f"user{n}",
            "password1": "correct-Horse-77",
            "password2": "correct-Horse-77",
        }
        assert client.post("/accounts/signup/", form).status_code == 302
        client.logout()
    form = {"username": "user9", "password1": "correct-Horse-77", "password2": "correct-Horse-77"}
    response = client.post("/accounts/signup/", form)
    assert response.status_code == 429 and "Too many sign-ups" in response.content.decode()


@pytest.mark.parametrize("url", ["/accounts/login/", "/admin/login/"])
def test_a_right_password_resets_the_count(alice, settings, url):
    alice.is_staff = True
    alice.save(update_fields=["is_staff"])
    client = Client(REMOTE_ADDR="203.0.113.11")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _login(client, "guess", url=url)
    assert _login(client, PASSWORD, url=url).status_code == 302
    client.logout()
    _login(client, "guess", url=url)
    assert _login(client, PASSWORD, url=url).status_code == 302
