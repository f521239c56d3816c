"""Throttling per key: each personal key (or app and user, or session) has its own budget; past it,
429 in the error shape with Retry-After."""

from __future__ import annotations

import pytest

from accounts.authentication import PerKeyThrottle
from tests.conftest import _api_client


@pytest.fixture
def three_per_minute(monkeypatch):
    monkeypatch.setattr(PerKeyThrottle, "THROTTLE_RATES", {"api": "3/min"})


def test_a_key_past_its_rate_gets_429_in_the_error_shape(three_per_minute, alice_api, alice):
    for _ in range(3):
        assert alice_api.get("/api/v1/memories").status_code == 200

    response = alice_api.get("/api/v1/memories")

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "throttled"
    assert int(response["Retry-After"]) > 0
    other_key = _api_client(alice)  # another key of the same user has its own budget
    assert other_key.get("/api/v1/memories").status_code == 200


def test_apps_are_throttled_per_app_and_user(three_per_minute, calendar_for_alice):
    statuses = [calendar_for_alice.get("/api/v1/context/profile").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_the_rate_comes_from_the_settings():
    from django.conf import settings

    assert (
        PerKeyThrottle.THROTTLE_RATES["api"]
        == settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["api"]
    )
