"""Property-based tests of the whole API against its own OpenAPI schema (schemathesis, in process
over WSGI): for every operation, generated requests with alice's key and then bob's get no 5xx, and
every response conforms to the schema (status code documented, content type, body shape).

Both users have data (conversations, memories, an export); the ids in generated paths are random, so
most object requests are answered 404, which the schema documents. Destructive operations (delete,
forget) may wipe a user's data midway: fine, as long as nothing answers 5xx. Deterministic
(derandomized), a few examples per operation, no shrinking: about a minute."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from accounts.authentication import PerKeyThrottle
from accounts.scopes import ALL_SCOPES
from accounts.services import api_key_create
from chat.services import chat_turn
from tests.factories import ready_export

MAX_EXAMPLES = 25
# No 5xx, and the responses as documented. Not checked: that every schema-violating request is
# refused (DRF coerces on purpose: "1" is a fine integer, 0 a fine boolean, 12 a fine message).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    unsupported_method,
    allow_header_conformance,
]

app = WSGIHandler()
schema = schemathesis.openapi.from_wsgi("/api/schema/", app, headers={"Accept": "application/json"})


@pytest.fixture
def two_keys(alice, bob, run_on_commit, monkeypatch):
    """Alice's and bob's keys, each with some data; throttling out of the way; the test's
    transaction kept across in-process requests (as Django's test client does)."""
    monkeypatch.setattr(PerKeyThrottle, "THROTTLE_RATES", {"api": "1000000/min"})
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    keys = []
    for user, text in ((alice, "I live in Lisbon."), (bob, "I'm vegetarian.")):
        run_on_commit(chat_turn, user=user, conversation=None, text=text)
        ready_export(user)
        keys.append(api_key_create(user=user, scopes=ALL_SCOPES)[1])
    yield keys
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@hypothesis_settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
@pytest.mark.django_db
def test_the_api_answers_as_its_schema_says(case, two_keys):
    for key in two_keys:
        case.call_and_validate(headers={"Authorization": f"Bearer {key}"}, checks=CHECKS)
