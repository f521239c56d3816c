"""Fixtures shared by every test: users alice (owner), bob and charlie (no access to alice's
things), API clients with personal keys, and eager Celery so on_commit work runs inside the test."""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ConsentRecord, User
from accounts.scopes import ALL_SCOPES
from accounts.services import api_key_create, consent_set, memory_settings_update
from memoryweb import database


def pytest_sessionfinish(session, exitstatus):
    # The README's test command asks to stop the embedded server afterwards if this run started it;
    # plain pytest runs (maybe several side by side) leave it running for each other.
    if (
        settings.EMBEDDED_DATABASE
        and database.started_here
        and os.environ.get("MEMORYWEB_STOP_DB_AFTER_TESTS")
    ):
        from django.db import connections

        connections.close_all()
        database.stop_embedded_server(settings.DATA_DIR)


_SCORES = pytest.StashKey[list]()


@pytest.fixture
def report_score(request):
    """Say a measured score (precision, recall) in the run's summary, passed or not."""
    scores = request.config.stash.setdefault(_SCORES, [])
    return scores.append


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    scores = config.stash.get(_SCORES, [])
    if scores:
        terminalreporter.section("labelled-set scores")
        for line in scores:
            terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Counters kept in the cache (throttles, wrong API keys, sign-ups) start at zero in each test."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _offline_and_eager(settings):
    settings.OPENAI_API_KEY = ""
    settings.EMBEDDING_BACKEND = "local"
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from memoryweb.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def _user(username: str) -> User:
    """A user who consented to memory and turned on the use of past chats (both off by default)."""
    user = User.objects.create_user(username=username, password=f"{username}-pass-123")
    consent_set(
        user=user, purpose=ConsentRecord.Purpose.MEMORY, granted=True, method="test fixture"
    )
    memory_settings_update(user=user, use_past_chats=True)
    return user


@pytest.fixture
def alice(db) -> User:
    return _user("alice")


@pytest.fixture
def bob(db) -> User:
    return _user("bob")


@pytest.fixture
def charlie(db) -> User:
    return _user("charlie")


def _logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def alice_client(alice) -> Client:
    return _logged_in(alice)


@pytest.fixture
def bob_client(bob) -> Client:
    return _logged_in(bob)


def _api_client(user: User) -> APIClient:
    _, key = api_key_create(user=user, scopes=ALL_SCOPES)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def alice_api(alice) -> APIClient:
    return _api_client(alice)


@pytest.fixture
def bob_api(bob) -> APIClient:
    return _api_client(bob)


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks):
    """Run transaction.on_commit callbacks (the queued extraction) as a committed request would."""

    def run(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return run
