"""One scope vocabulary (accounts.scopes) for apps and personal keys: every API view declares the
scope each of its methods requires; a key gets exactly the endpoints its scopes allow (403 naming the
missing scope); a method without a declared scope is refused to every key and app (fail closed);
and an expired or revoked key is refused with a 401 that says which, counted as a wrong key."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from accounts.authentication import _failures_key
from accounts.connected_apps import app_grant
from accounts.models import AccessEvent, ApiKey, AppGrant
from accounts.scopes import ALL_SCOPES, APP_SCOPES, Scope, required_scope
from accounts.services import api_key_create, api_key_revoke
from tests.api.conftest import app_client
from tests.api.test_access import ENDPOINTS, IDS, _call


def _key_client(user, scopes, **options) -> tuple[ApiKey, APIClient]:
    api_key, key = api_key_create(user=user, scopes=scopes, **options)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return api_key, client


def _api_views():
    """(route, view class) of every pattern under /api/v1/, walking nested includes."""

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield prefix + str(pattern.pattern), pattern.callback

    for route, callback in walk(get_resolver("memoryweb.api_urls").url_patterns):
        if route:  # "": the 404 for everything else
            yield route, callback.view_class


def test_every_api_view_declares_a_known_scope_for_every_method_it_answers():
    views = list(_api_views())
    assert len(views) >= 23
    for route, view in views:
        methods = [m for m in view.http_method_names if m != "options" and hasattr(view, m)]
        assert methods, route
        for method in methods:
            scope = required_scope(view, method.upper())
            assert scope in ALL_SCOPES, f"{view.__name__}.{method} ({route}) declares no scope"
        declared = {m.lower() for m in getattr(view, "required_scopes", {})}
        assert declared <= set(methods), f"{view.__name__} declares scopes for methods it lacks"


def test_the_endpoint_table_names_the_scope_each_view_requires(alice_data):
    from django.urls import resolve

    for method, url, _, _, scope in ENDPOINTS:
        match = resolve(url.format(**alice_data).split("?")[0])
        assert required_scope(match.func.view_class, method.upper()) == scope, (method, url)


def test_apps_may_only_hold_read_and_write_and_keys_any_scope():
    assert APP_SCOPES == ("context:read", "memories:write")
    assert set(APP_SCOPES) < set(ALL_SCOPES)
    assert {s.split(":")[0] for s in ALL_SCOPES} == {"context", "memories", "chat", "account"}


@pytest.mark.parametrize("method, url, body, owner_status, scope", ENDPOINTS, ids=IDS)
def test_a_key_with_just_the_endpoints_scope_gets_it(
    alice, alice_data, method, url, body, owner_status, scope
):
    _, client = _key_client(alice, [scope])
    response = _call(client, method, url, body, alice_data)
    assert response.status_code == owner_status, response.content


@pytest.mark.parametrize("method, url, body, owner_status, scope", ENDPOINTS, ids=IDS)
def test_a_key_with_every_scope_but_the_endpoints_gets_403_naming_it(
    alice, alice_data, method, url, body, owner_status, scope
):
    _, client = _key_client(alice, [s for s in ALL_SCOPES if s != scope])
    response = _call(client, method, url, body, alice_data)
    assert response.status_code == 403, response.content
    error = response.json()["error"]
    assert error["code"] == "permission_denied"
    assert error["message"] == f"This API key does not have the scope {scope}."


class _Undeclared(APIView):
    """A view that forgot to declare its scope."""

    def get(self, request):
        return Response({"ok": True})


def test_a_view_without_a_declared_scope_is_refused_to_keys_and_apps(alice, calendar):
    _, key = api_key_create(user=alice, scopes=ALL_SCOPES)
    factory = APIRequestFactory()
    keyed = _Undeclared.as_view()(factory.get("/api/v1/x", HTTP_AUTHORIZATION=f"Bearer {key}"))
    assert keyed.status_code == 403
    assert "declares no scope" in keyed.data["error"]["message"]

    app, secret = calendar
    app_grant(user=alice, app=app, scopes=list(APP_SCOPES))
    by_app = _Undeclared.as_view()(
        factory.get(
            "/api/v1/x", HTTP_AUTHORIZATION=f"Bearer {secret}", HTTP_X_MEMORYWEB_USER="alice"
        )
    )
    assert by_app.status_code == 403

    request = factory.get("/api/v1/x")
    force_authenticate(request, user=alice)  # the user in person (a session) holds every scope
    assert _Undeclared.as_view()(request).status_code == 200


def test_an_undeclared_method_of_a_real_endpoint_is_refused_to_a_key(alice):
    _, client = _key_client(alice, ALL_SCOPES)
    assert client.options("/api/v1/memories").status_code == 403
    assert client.head("/api/v1/memories").status_code == 200  # HEAD is GET's scope


def test_an_app_grant_holding_a_scope_no_app_may_hold_gives_nothing_of_it(
    alice, alice_data, calendar
):
    app, secret = calendar
    # written past app_grant, which refuses it
    AppGrant.objects.create(user=alice, app=app, scopes=[*APP_SCOPES, Scope.CHAT])
    client = app_client(secret, "alice")
    assert client.post("/api/v1/chat", {"message": "Hi"}, format="json").status_code == 403
    assert client.get("/api/v1/memories").status_code == 200


def test_app_grants_refuse_scopes_apps_may_not_hold(alice, calendar):
    app, _ = calendar
    for scopes in ([Scope.CHAT], [Scope.CONTEXT_READ, Scope.ACCOUNT_ERASE], []):
        with pytest.raises(ValueError):
            app_grant(user=alice, app=app, scopes=scopes)


def test_a_key_needs_known_scopes_and_a_positive_lifetime(alice):
    for scopes in ([], ["everything"], ["chat", "admin"]):
        with pytest.raises(ValueError):
            api_key_create(user=alice, scopes=scopes)
    with pytest.raises(ValueError):
        api_key_create(user=alice, scopes=["chat"], expires_in_days=0)
    assert not ApiKey.objects.filter(user=alice).exists()


def test_an_expired_key_gets_401_saying_so_and_counts_as_a_wrong_key(alice):
    api_key, client = _key_client(alice, ALL_SCOPES, expires_in_days=30)
    assert api_key.expires_at - timezone.now() > timedelta(days=29, hours=23)
    assert client.get("/api/v1/memories").status_code == 200

    ApiKey.objects.filter(pk=api_key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.get("/api/v1/memories")
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "authentication_failed"
    assert error["message"].startswith("This API key expired on ")
    assert response["WWW-Authenticate"] == "Bearer"
    assert cache.get(_failures_key(response.wsgi_request)) == 1


def test_a_revoked_key_gets_401_invalid_or_revoked_and_counts_as_a_wrong_key(alice):
    api_key, client = _key_client(alice, ALL_SCOPES)
    api_key_revoke(api_key=api_key)
    response = client.get("/api/v1/memories")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Invalid or revoked API key."
    assert cache.get(_failures_key(response.wsgi_request)) == 1
    assert list(ApiKey.objects.active().filter(pk=api_key.pk)) == []


def test_a_key_of_a_deactivated_user_is_invalid(alice):
    _, client = _key_client(alice, ALL_SCOPES)
    alice.is_active = False
    alice.save(update_fields=["is_active"])
    response = client.get("/api/v1/memories")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Invalid or revoked API key."


def test_the_keys_api_lists_keys_without_secrets_and_revokes_one(alice, alice_data):
    _, client = _key_client(alice, [Scope.ACCOUNT_KEYS], name="laptop")
    listed = client.get("/api/v1/me/keys").json()["results"]
    assert {k["name"] for k in listed} >= {"laptop", "spare"}
    spare = next(k for k in listed if k["name"] == "spare")
    assert spare["scopes"] == ["context:read"] and spare["status"] == "active"
    assert "hashed_key" not in spare and "key" not in spare

    revoked = client.post(f"/api/v1/me/keys/{alice_data['key']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert ApiKey.objects.get(pk=alice_data["key"]).revoked_at is not None
    event = AccessEvent.objects.get(api_key_id=alice_data["key"], purpose="API key revoked")
    assert event.actor == AccessEvent.Actor.API
    # revoking again changes nothing and logs nothing more
    assert client.post(f"/api/v1/me/keys/{alice_data['key']}/revoke").status_code == 200
    assert AccessEvent.objects.filter(purpose="API key revoked").count() == 1


def test_bob_cannot_revoke_alices_key_over_the_api(alice_data, bob_api):
    response = bob_api.post(f"/api/v1/me/keys/{alice_data['key']}/revoke")
    assert response.status_code == 404
    assert ApiKey.objects.get(pk=alice_data["key"]).revoked_at is None
