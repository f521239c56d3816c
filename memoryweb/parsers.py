"""The API's request parser: JSON within limits. Apart from memoryweb.api because DRF imports its
parsers while loading its views (which memoryweb.api builds on)."""

from __future__ import annotations

import json

from django.conf import settings
from rest_framework import exceptions, parsers, status


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with limits: a body of at most API_MAX_BODY_BYTES (413 past it), nested at
    most API_MAX_JSON_DEPTH deep, UTF-8 only. A few thousand "[" made the standard one recurse until
    Python gave up (a 500)."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_MAX_BODY_BYTES
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise exceptions.ParseError("The request body is not UTF-8 text.") from exc
        brackets = text.count("[") + text.count("{")
        if brackets > settings.API_MAX_JSON_DEPTH and _nesting(text) > settings.API_MAX_JSON_DEPTH:
            raise exceptions.ParseError(
                f"The JSON is nested deeper than {settings.API_MAX_JSON_DEPTH} levels."
            )
        try:
            return json.loads(text, parse_constant=_no_constant)
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error: {exc}") from exc


def _nesting(text: str) -> int:
    """How deep arrays and objects nest in JSON text, counted without parsing (brackets in strings
    are skipped), so that no depth can exhaust the parser."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _no_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")
