"""Against guessing and flooding: what a locked-out login or password re-check gets (django-axes
calls `lockout_response`), a clear message with the time it lifts, as the API's error JSON under
/api/ and a page elsewhere; and how many accounts one address may make."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.http import JsonResponse
from django.shortcuts import render


def lockout_message() -> str:
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return (
        f"Too many wrong passwords. For your safety, signing in and password checks are paused for "
        f"{minutes} minutes from the last attempt; try again after that."
    )


def count_attempt(key: str, window_seconds: int) -> int:
    """Add one to a counter that lapses `window_seconds` after its first attempt; returns the count."""
    cache.add(key, 0, window_seconds)
    try:
        return cache.incr(key)
    except ValueError:  # it lapsed between the two calls
        cache.add(key, 1, window_seconds)
        return 1


def signup_attempt_allowed(request) -> bool:
    """Count a sign-up attempt from the request's address; False once it made SIGNUP_LIMIT_PER_HOUR
    in the hour (each costs a password hash, and accounts are cheap to make by the thousand)."""
    count = count_attempt("signups:" + request.META.get("REMOTE_ADDR", ""), 3600)
    return count <= settings.SIGNUP_LIMIT_PER_HOUR


def lockout_response(request, original_response=None, credentials=None):
    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    if request.path.startswith("/api/"):
        body = {"error": {"code": "locked_out", "message": lockout_message()}}
        response = JsonResponse(body, status=429)
    else:
        context = {"message": lockout_message()}
        response = render(request, "accounts/locked_out.html", context, status=429)
    response["Retry-After"] = str(seconds)
    return response
