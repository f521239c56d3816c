"""Junk bodies get a clear error in the API's shape, never a 500: JSON nested too deep, bodies too
large, text that is not UTF-8; and an error the code did not expect is JSON too."""

from __future__ import annotations

import pytest

ENDPOINTS = ["/api/v1/chat", "/api/v1/memories", "/api/v1/context"]


def _post(client, url: str, body: bytes):
    return client.post(url, data=body, content_type="application/json")


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize(
    "body", [b"[" * 5000, b"[" * 5000 + b"]" * 5000, b'{"a":' * 3000 + b"1" + b"}" * 3000]
)
def test_deeply_nested_json_is_a_400(alice_api, url, body):
    response = _post(alice_api, url, body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_json_nested_past_the_limit_names_the_limit(alice_api, settings):
    body = b'{"message": ' + b"[" * 40 + b"1" + b"]" * 40 + b"}"
    response = _post(alice_api, "/api/v1/chat", body)
    assert response.status_code == 400
    assert f"{settings.API_MAX_JSON_DEPTH} levels" in response.json()["error"]["message"]


def test_a_body_over_the_limit_is_a_413(alice_api, settings):
    settings.API_MAX_BODY_BYTES = 10_000
    response = _post(alice_api, "/api/v1/chat", b'{"message": "' + b"a" * 10_001 + b'"}')
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


def test_a_body_that_is_not_utf8_is_a_400(alice_api):
    response = _post(alice_api, "/api/v1/memories", b'{"text": "caf\xe9"}')
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_an_ordinary_body_still_works(alice_api):
    response = _post(alice_api, "/api/v1/context", b'{"query": "where do I live?"}')
    assert response.status_code == 200


def test_an_unexpected_error_is_json_too(alice_api, monkeypatch):
    from memories import api

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(api, "build_context", broken)
    alice_api.raise_request_exception = False
    response = _post(alice_api, "/api/v1/context", b'{"query": "where do I live?"}')
    assert response.status_code == 500
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == "server_error"
    assert "a bug" not in response.content.decode()  # nothing of the internals


def test_an_unknown_api_url_with_a_junk_body_is_a_json_404(alice_api):
    response = _post(alice_api, "/api/v1/nothing-here", b"[" * 5000)
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
