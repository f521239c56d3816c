"""Connected apps (third-party API clients, the `RegisteredApp` model) and the users' grants: who
may use a user's memory over the API, with which scopes.

Design (docs/api.md): an operator registers an app in the admin and gives it its secret (shown once,
stored as SHA-256). The app calls the API with `Authorization: Bearer <app secret>` and names the
user it acts for in `X-Memoryweb-User: <username>`. It gets access to that user's data only while
the user's grant in the portal is in force, and only for the grant's scopes; without one (never
granted, revoked, unknown user) every request answers 404, as for anyone else's objects. Each grant
and revocation is also a consent record (purpose `app:<app name>`), and each read by an app is in
the user's access log.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q
from django.shortcuts import get_object_or_404
from django.utils import timezone
from oauth2_provider.models import (
    get_access_token_model,
    get_grant_model,
    get_refresh_token_model,
)

from accounts.models import AccessEvent, AppGrant, RegisteredApp
from accounts.scopes import APP_SCOPES, scopes_validate
from accounts.services import consent_set, hash_key, lock_user

APP_SECRET_PREFIX = "mwapp_"


@dataclass(frozen=True)
class AppAccess:
    """What an app's request carries as `request.auth`: the app, the user's grant (None: no
    access), and for an OAuth token the scopes it was issued with (None for an app secret)."""

    app: RegisteredApp
    grant: AppGrant | None
    token_scopes: frozenset[str] | None = None

    def allows(self, scope: str | None) -> bool:
        """Whether the grant in force holds `scope`, one an app may ever hold (never for None), and
        so does the OAuth token if it is one."""
        return (
            scope in APP_SCOPES
            and self.grant is not None
            and scope in self.grant.scopes
            and (self.token_scopes is None or scope in self.token_scopes)
        )


def consent_purpose(app: RegisteredApp) -> str:
    """The consent record's purpose for an app's access."""
    return f"app:{app.name}"[:100]


def app_register(*, name: str, description: str = "") -> tuple[RegisteredApp, str]:
    """Register an app; returns it and its secret, which is never stored or shown again."""
    app = RegisteredApp(name=name, description=description)
    secret = app_secret_set(app=app)
    return app, secret


def app_secret_set(*, app: RegisteredApp) -> str:
    """Give `app` a new secret (the old one stops working) and save it; returns the secret."""
    secret = APP_SECRET_PREFIX + secrets.token_urlsafe(32)
    app.prefix, app.hashed_secret = secret[:12], hash_key(secret)
    app.save()
    return secret


def app_authenticate(*, secret: str, username: str) -> AppAccess | None:
    """The app with this secret (None for an unknown or disabled one), with the grant in force of
    the active user `username` (None when there is no such user or no such grant). Notes when it was
    used."""
    app = RegisteredApp.objects.active().filter(hashed_secret=hash_key(secret)).first()
    if app is None:
        return None
    grant = (
        AppGrant.objects.active()
        .select_related("user")
        .filter(app=app, user__username=username, user__is_active=True)
        .first()
    )
    now = timezone.now()
    if app.last_used_at is None or (now - app.last_used_at).total_seconds() > 60:
        RegisteredApp.objects.filter(pk=app.pk).update(last_used_at=now)
    return AppAccess(app=app, grant=grant)


@transaction.atomic
def app_grant(*, user, app: RegisteredApp, scopes: list[str], method: str = "") -> AppGrant:
    """Grant `app` access to `user`'s memory with `scopes` (replacing a grant in force), recorded as
    consent (by `method`: the apps page unless said)."""
    scopes = scopes_validate(scopes, allowed=APP_SCOPES)
    lock_user(user)  # two grants at once (a double submit) replace each other in turn
    AppGrant.objects.for_user(user).active().filter(app=app).update(revoked_at=timezone.now())
    grant = AppGrant.objects.create(user=user, app=app, scopes=scopes)
    consent_set(
        user=user,
        purpose=consent_purpose(app),
        granted=True,
        method=method or "apps page: " + ", ".join(scopes),
    )
    return grant


@transaction.atomic
def app_revoke(*, user, grant: AppGrant) -> bool:
    """Revoke a grant of `user` (in force at once: the app's next request gets 404), recorded as
    consent. Returns False when it was already revoked."""
    revoked = (
        AppGrant.objects.for_user(user)
        .active()
        .filter(pk=grant.pk)
        .update(revoked_at=timezone.now())
    )
    if revoked:
        consent_set(
            user=user, purpose=consent_purpose(grant.app), granted=False, method="apps page"
        )
        oauth_tokens_revoke(user=user, app=grant.app)
    return bool(revoked)


def oauth_tokens_revoke(*, user, app: RegisteredApp) -> None:
    """End every code and token `app`'s OAuth client holds for `user` (its grant was revoked)."""
    if app.oauth_application_id is None:
        return
    mine = {"user": user, "application_id": app.oauth_application_id}
    for refresh_token in get_refresh_token_model().objects.filter(**mine, revoked__isnull=True):
        refresh_token.revoke()
    get_access_token_model().objects.filter(**mine).delete()
    get_grant_model().objects.filter(**mine).delete()


def apps_with_grants(*, user) -> list[tuple[RegisteredApp, AppGrant | None]]:
    """Every active app the operator registered, with `user`'s grant in force (or None), for the
    apps page; and any other app the user has a grant for (disabled, or an OAuth client that
    registered itself, which only its own users see): to revoke."""
    grants = {g.app_id: g for g in AppGrant.objects.for_user(user).active()}
    apps = RegisteredApp.objects.filter(
        Q(disabled_at__isnull=True, self_registered=False) | Q(pk__in=grants)
    )
    return [(app, grants.get(app.pk)) for app in apps]


def grant_of_user(*, user, grant_id) -> AppGrant:
    """The user's grant in force, or 404 (also for another user's)."""
    return get_object_or_404(
        AppGrant.objects.for_user(user).active().select_related("app"), pk=grant_id
    )


def access_record(
    *, user, purpose: str, items: int, api_key=None, app: RegisteredApp | None = None
) -> AccessEvent:
    """One read of `user`'s memories over the API, in their access log: by a personal key or an
    app."""
    actor = AccessEvent.Actor.APP if app is not None else AccessEvent.Actor.API
    return AccessEvent.objects.create(
        user=user, actor=actor, purpose=purpose, api_key=api_key, app=app, items=items
    )
