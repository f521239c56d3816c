"""`Authorization: Bearer <personal API key>` for the API."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions

from accounts.models import ApiKey
from accounts.services import hash_key

LAST_USED_RESOLUTION = timedelta(minutes=1)  # don't write on every request


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid Authorization header: expected 'Bearer <key>'.")
        try:
            key = header[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid API key.") from None
        api_key = (
            ApiKey.objects.active()
            .select_related("user")
            .filter(hashed_key=hash_key(key), user__is_active=True)
            .first()
        )
        if api_key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        now = timezone.now()
        if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        return api_key.user, api_key

    def authenticate_header(self, request):
        return self.keyword


def api_key_of(request) -> ApiKey | None:
    """The personal API key a request was authenticated with (None for a browser session)."""
    return request.auth if isinstance(request.auth, ApiKey) else None
