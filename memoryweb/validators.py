"""Checks on text that users and apps send, shared by the pages, the API and the services."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError


def validate_text(text: object, *, field: str = "message") -> str:
    """The text of a message or query, stripped; empty, oversized or non-text input is refused."""
    if not isinstance(text, str):
        raise ValidationError(f"The {field} must be text.")
    text = text.replace("\x00", "").strip()
    if not text:
        raise ValidationError(f"The {field} is empty.")
    if len(text) > settings.MESSAGE_MAX_CHARS:
        raise ValidationError(
            f"The {field} is too long ({len(text)} characters; at most {settings.MESSAGE_MAX_CHARS})."
        )
    return text
