"""Shared API infrastructure: one error shape for every failure (never a 500 for bad input),
pagination, and the OpenAPI schema's conventions (component names, the error responses every
operation can give)."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from memoryweb.pagination import Pagination
from memoryweb.parsers import PayloadTooLarge


def exception_handler(exc, context):
    """Render every error as {"error": {"code": ..., "message": ..., "fields": {...}?}}."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError({"non_field_errors": exc.messages})
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if isinstance(exc, RequestDataTooBig):  # past Django's own limit, before our parser's
        exc = PayloadTooLarge(
            f"The request body is larger than {settings.API_MAX_BODY_BYTES} bytes."
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = getattr(exc, "default_code", "error")
    body: dict = {"code": code}
    detail = response.data
    if isinstance(exc, exceptions.ValidationError):
        body["message"] = _first_message(detail) or "Invalid input."
        body["fields"] = detail if isinstance(detail, dict) else {"non_field_errors": detail}
    elif isinstance(detail, dict) and "detail" in detail:
        body["message"] = str(detail["detail"])
    else:
        body["message"] = str(detail)
    return Response({"error": body}, status=response.status_code, headers=_auth_headers(response))


def _first_message(detail, field: str = "") -> str:
    """The first error message in a validation error's detail, with the field it is about ("text:
    This field may not be blank.")."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = key if key != "non_field_errors" else ""
            if message := _first_message(
                value, f"{field}.{name}" if field and name else field or name
            ):
                return message
        return ""
    if isinstance(detail, list):
        for item in detail:
            if message := _first_message(item, field):
                return message
        return ""
    return f"{field}: {detail}" if field else str(detail)


def _error_json(status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status_code)


def _error_page(status_code: int, code: str, message: str, django_view):
    """One of Django's error pages (a bad request, an uncaught error): the API's error JSON under
    /api/, the usual HTML page elsewhere."""

    def handler(request, exception=None):
        if request.path.startswith("/api/"):
            return _error_json(status_code, code, message)
        return django_view(request) if exception is None else django_view(request, exception)

    return handler


handler400 = _error_page(400, "bad_request", "Bad request.", defaults.bad_request)
handler403 = _error_page(403, "permission_denied", "Permission denied.", defaults.permission_denied)
handler404 = _error_page(404, "not_found", "Not found.", defaults.page_not_found)
handler500 = _error_page(
    500,
    "server_error",
    "Something went wrong on our side; nothing you sent was lost.",
    defaults.server_error,
)


def _auth_headers(response) -> dict:
    return {k: v for k, v in response.items() if k in ("WWW-Authenticate", "Retry-After")}


@csrf_exempt  # nothing is done here: a POST to a wrong URL is a 404 like any other
def not_found(request, *args, **kwargs) -> JsonResponse:
    """A URL under /api/v1/ that names no endpoint (or an id that is not a number): 404 in the error
    shape."""
    return _error_json(404, "not_found", "Not found.")


def bad_request(message: str) -> Response:
    return Response(
        {"error": {"code": "invalid", "message": message}}, status=status.HTTP_400_BAD_REQUEST
    )


# --- Pagination -----------------------------------------------------------------------------------


PAGE_PARAMETERS = [
    OpenApiParameter("page", int, description="Page number, from 1."),
    OpenApiParameter("page_size", int, description="Items per page (default 50, at most 200)."),
]


def paginated_response(request, view, items, serializer_class) -> Response:
    """One page of `items` (a queryset or a list) rendered with `serializer_class`."""
    paginator = Pagination()
    page = paginator.paginate_queryset(items, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


def paginated(serializer_class, name: str):
    """The schema of a page of `serializer_class` items (for @extend_schema)."""
    return inline_serializer(
        name=f"Paginated{name}List",
        fields={
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": serializer_class(many=True),
        },
    )


# --- OpenAPI --------------------------------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    class Detail(serializers.Serializer):
        code = serializers.CharField(
            help_text="e.g. invalid, not_found, not_authenticated, throttled"
        )
        message = serializers.CharField()
        fields = serializers.DictField(
            required=False,
            help_text="For invalid input: the messages of each field that was refused.",
        )

    error = Detail()


ERROR_RESPONSES = {
    "400": "Invalid input (the fields say why), or malformed JSON.",
    "401": "No credentials, or a wrong, revoked or expired key.",
    "403": "Not allowed: a session without its CSRF token, or a key or app grant without this endpoint's scope.",
    "404": "No such object of yours (also for other users' objects, and for apps without a grant).",
    "429": "Too many requests with this key; retry after the Retry-After header's seconds.",
    "default": "Any other error, in the same shape.",
}


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's, with unique component names for nested Input/Output serializers
    (`ChatApi.Input` -> `ChatInput`) and the error shape documented on every operation."""

    def get_serializer_name(self, serializer, direction) -> str:
        qualname = type(serializer).__qualname__
        if "." in qualname:
            return qualname.replace("Api.", "").replace(".", "")
        return super().get_serializer_name(serializer, direction)

    def get_operation_id(self) -> str:
        """`<view>_<method>`, e.g. `memory_detail_patch` for MemoryDetailApi.patch: unique and
        readable."""
        name = type(self.view).__name__.removesuffix("Api")
        return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower() + "_" + self.method.lower()

    def get_description(self) -> str:
        """The view's description, and the scope a personal key or an app needs for this method."""
        description = super().get_description()
        scope = getattr(self.view, "required_scopes", {}).get(self.method.upper())
        if scope is None:
            return description
        return f"{description}\n\nScope: `{scope}`.".strip()

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction == "response":
            for code, description in ERROR_RESPONSES.items():
                if code not in responses:
                    response = self._get_response_for_code(
                        ErrorSerializer, code, direction=direction
                    )
                    responses[code] = {**response, "description": description}
        return responses


class BearerKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "A personal API key (`mw_…`), limited to its scopes, or a registered app's secret "
                "(`mwapp_…`) together with the header `X-Memoryweb-User: <username>` naming a user "
                "who granted the app access. Each operation names the scope it requires."
            ),
        }
