"""/healthz and /readyz: what a load balancer asks, over plain HTTP, without signing in. Here no
worker runs (the suite runs Celery eagerly), so /readyz must say so; tests/test_serve_faults.py
sees it answer 200 under `serve`, and 503 naming the database while that is down."""

from __future__ import annotations

import json

import pytest
from django.conf import settings as django_settings

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_the_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok\n"
    assert "no-cache" in response["Cache-Control"]


def test_readyz_answers_503_naming_what_failed(client):
    response = client.get("/readyz", HTTP_ACCEPT="*/*")

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert body == {
        "database": "OK",
        "broker": "OK",
        "worker": "Unavailable: Celery workers unavailable",
    }


def test_readyz_answers_in_plain_text_too(client):
    response = client.get("/readyz", HTTP_ACCEPT="text/plain")

    assert response.status_code == 503
    assert response.content.decode().splitlines() == [
        "database: OK",
        "broker: OK",
        "worker: Unavailable: Celery workers unavailable",
    ]


def test_readyz_tells_nothing_of_the_broker_it_cannot_reach(client, settings):
    from memoryweb.celery import app

    secret_url = "redis://:s3cret-password@127.0.0.1:1/0"  # nothing listens on port 1
    saved = app.conf.broker_url, app.conf.broker_transport_options
    app.conf.broker_url, app.conf.broker_transport_options = secret_url, {}
    app._pool = None
    try:
        response = client.get("/readyz?format=json")
    finally:
        app.conf.broker_url, app.conf.broker_transport_options = saved
        app._pool = None

    assert response.status_code == 503
    body = json.loads(response.content)
    assert body["database"] == "OK"
    assert body["broker"] == "Unavailable: the broker does not answer"
    assert "s3cret" not in response.content.decode()
    assert str(django_settings.DATA_DIR) not in response.content.decode()


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_endpoints_are_not_redirected_to_https(client, settings, path):
    settings.SECURE_SSL_REDIRECT = True

    assert client.get(path).status_code in (200, 503)
    assert client.get("/accounts/login/").status_code == 301  # the pages still are
