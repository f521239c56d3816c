"""Shared API infrastructure: one error shape for every failure, never a 500 for bad input."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    """Render every error as {"error": {"code": ..., "message": ..., "fields": {...}?}}."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.messages)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = getattr(exc, "default_code", "error")
    body: dict = {"code": code}
    detail = response.data
    if isinstance(exc, exceptions.ValidationError):
        body["message"] = "Invalid input."
        body["fields"] = detail if isinstance(detail, dict) else {"non_field_errors": detail}
    elif isinstance(detail, dict) and "detail" in detail:
        body["message"] = str(detail["detail"])
    else:
        body["message"] = str(detail)
    return Response({"error": body}, status=response.status_code, headers=_auth_headers(response))


def _auth_headers(response) -> dict:
    return {k: v for k, v in response.items() if k in ("WWW-Authenticate", "Retry-After")}


def bad_request(message: str) -> Response:
    return Response({"error": {"code": "invalid", "message": message}}, status=status.HTTP_400_BAD_REQUEST)
