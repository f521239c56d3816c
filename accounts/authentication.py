"""Who is calling the API, and what they may do (the scopes: accounts.scopes).

- `Authorization: Bearer <personal API key>`: the key's owner, the endpoints whose scope the key
  holds, until it expires or is revoked.
- `Authorization: Bearer <app secret>` + `X-Memoryweb-User: <username>`: a registered app acting for a
  user who granted it access (accounts.connected_apps); only the endpoints whose scope the grant holds.
- `Authorization: Bearer <OAuth access token>` (`mwoat_…`, accounts.oauth): an OAuth client (an MCP
  client) acting for the user who consented, as the app it is registered as: the same grant and
  scopes as an app, narrowed to the token's.
- A browser session (with CSRF): the logged-in user, every endpoint.
"""

from __future__ import annotations

from datetime import UTC, timedelta

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions, throttling

from accounts.connected_apps import APP_SECRET_PREFIX, AppAccess, access_record, app_authenticate
from accounts.lockout import count_attempt
from accounts.models import ApiKey
from accounts.oauth import ACCESS_TOKEN_PREFIX, oauth_access
from accounts.scopes import required_scope
from accounts.services import hash_key, password_recheck

LAST_USED_RESOLUTION = timedelta(minutes=1)  # don't write on every request
APP_USER_HEADER = "X-Memoryweb-User"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Invalid Authorization header: expected 'Bearer <key>'."
            )
        _refuse_while_guessing(request)
        try:
            key = header[1].decode()
        except UnicodeDecodeError:
            _count_failure(request)
            raise exceptions.AuthenticationFailed("Invalid API key.") from None
        if key.startswith(APP_SECRET_PREFIX):
            return _authenticate_app(request, key)
        if key.startswith(ACCESS_TOKEN_PREFIX):
            return _authenticate_oauth(request, key)
        api_key = (
            ApiKey.objects.select_related("user")
            .filter(hashed_key=hash_key(key), user__is_active=True)
            .first()
        )
        status = api_key.status if api_key is not None else ApiKey.Status.REVOKED
        if status != ApiKey.Status.ACTIVE:
            _count_failure(request)
            raise exceptions.AuthenticationFailed(
                f"This API key expired on {api_key.expires_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC."
                if status == ApiKey.Status.EXPIRED
                else "Invalid or revoked API key."
            )
        now = timezone.now()
        if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        return api_key.user, api_key

    def authenticate_header(self, request):
        return self.keyword


def _authenticate_app(request, secret: str):
    """An app's request: its secret must be valid; the user it names without a grant in force is
    answered 404 by `ApiAccess` (never 401, so that an app learns nothing about users who did not
    grant it)."""
    username = request.META.get("HTTP_X_MEMORYWEB_USER", "").strip()
    if not username or "\x00" in username:
        raise exceptions.AuthenticationFailed(
            f"An app names the user it acts for in the {APP_USER_HEADER} header."
        )
    access = app_authenticate(secret=secret, username=username[:150])
    if access is None:
        _count_failure(request)
        raise exceptions.AuthenticationFailed("Invalid or disabled app secret.")
    return (access.grant.user if access.grant else AnonymousUser()), access


def _authenticate_oauth(request, token: str):
    """An OAuth access token: valid, for this resource, and under the user's grant in force (else
    401 at once, e.g. the moment the grant is revoked)."""
    found = oauth_access(token=token, url=request.build_absolute_uri(request.path))
    if found is None:
        _count_failure(request)
        raise exceptions.AuthenticationFailed("Invalid, expired or revoked access token.")
    return found


def _failures_key(request) -> str:
    return "api-key-failures:" + request.META.get("REMOTE_ADDR", "")


def _refuse_while_guessing(request) -> None:
    """An address that sent API_KEY_FAILURE_LIMIT wrong keys or app secrets is refused (429) until
    its count lapses, LOGIN_LOCKOUT_MINUTES after the first of them: keys are not guessable, but
    trying costs the server a lookup each."""
    if cache.get(_failures_key(request), 0) >= settings.API_KEY_FAILURE_LIMIT:
        raise exceptions.Throttled(
            wait=settings.AXES_COOLOFF_TIME.total_seconds(),
            detail="Too many invalid API keys from this address; try again later.",
        )


def _count_failure(request) -> None:
    count_attempt(_failures_key(request), int(settings.AXES_COOLOFF_TIME.total_seconds()))


class ApiAccess(permissions.BasePermission):
    """Signed in; for an app, a grant in force from the user (else 404); and for a key or an app,
    the scope the view requires for this method (else 403 naming it; a view that declares none is
    refused to both: fail closed)."""

    def has_permission(self, request, view) -> bool:
        access, api_key = app_of(request), api_key_of(request)
        if access is None and api_key is None:
            return bool(request.user and request.user.is_authenticated)
        if access is not None and access.grant is None:
            raise exceptions.NotFound()
        refusal = scope_refusal(request.auth, required_scope(view, request.method))
        if refusal:
            raise exceptions.PermissionDenied(refusal)
        return True


def scope_refusal(auth, scope: str | None) -> str | None:
    """Why a personal key or an app (`request.auth`) may not use `scope` (None: it may). None as
    the scope is what a view or tool declared none for: refused to both (fail closed)."""
    if scope is None:
        return "This endpoint declares no scope: it is not open to API keys or apps."
    if isinstance(auth, AppAccess) and not auth.allows(scope):
        return f"This app's grant does not include the scope {scope}."
    if isinstance(auth, ApiKey) and scope not in auth.scopes:
        return f"This API key does not have the scope {scope}."
    return None


class PerKeyThrottle(throttling.SimpleRateThrottle):
    """A request budget per API key, per app and user, or per signed-in user (API_THROTTLE_RATE)."""

    scope = "api"

    def get_cache_key(self, request, view) -> str | None:
        if isinstance(request.auth, ApiKey):
            ident = f"key:{request.auth.pk}"
        elif (access := app_of(request)) is not None:
            ident = f"app:{access.app.pk}:user:{request.user.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"anon:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


def confirm_password_for_session(request) -> None:
    """A destructive call from a browser session needs the password again (field "password"), as on
    the portal's pages; with an API key, holding the key is the proof."""
    if isinstance(request.successful_authenticator, authentication.SessionAuthentication):
        password = request.data.get("password") if hasattr(request.data, "get") else None
        if not password_recheck(request=request._request, user=request.user, password=password):
            raise exceptions.PermissionDenied(
                'From the browser, this needs your password again ("password").'
            )


def api_key_of(request) -> ApiKey | None:
    """The personal API key a request was authenticated with (None for a browser session or an
    app)."""
    return request.auth if isinstance(request.auth, ApiKey) else None


def app_of(request) -> AppAccess | None:
    """The registered app a request comes from, with the user's grant (None for keys and
    sessions)."""
    return request.auth if isinstance(request.auth, AppAccess) else None


def record_read(request, *, purpose: str, items: int) -> None:
    """Log a read of the user's memories by an API key or an app in their access log (the user's own
    browser session reads nothing of anyone else's)."""
    access, api_key = app_of(request), api_key_of(request)
    if access is not None or api_key is not None:
        access_record(
            user=request.user,
            purpose=purpose,
            items=items,
            api_key=api_key,
            app=access.app if access else None,
        )
