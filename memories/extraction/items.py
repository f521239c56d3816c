"""What extraction produces: `ExtractedItem`, the subjects that hold one value, and the
fingerprint."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings

KINDS = ("fact", "preference", "relationship", "project", "instruction", "event")
OPS = ("add", "retract", "forget")
MAX_ITEM_CHARS = 500

# Subjects that hold one value at a time: a new, different value supersedes the current one.
SINGLE_VALUED_SUBJECTS = frozenset(
    {
        "name",
        "preferred name",
        "location",
        "hometown",
        "nationality",
        "diet",
        "occupation",
        "employer",
        "school",
        "birthday",
        "age",
        "relationship status",
        "address",
        "email",
        "phone",
    }
)


@dataclass(frozen=True)
class ExtractedItem:
    """One thing a message says about the user.

    kind: one of KINDS. subject: a short stable key; the same thing always gets the same subject,
    e.g. "diet", "location", "person:sam:brother", "project:api launch", "taste:jazz",
    "allergy:peanut", "instruction:language". Subjects in SINGLE_VALUED_SUBJECTS hold one value: a
    new value uses the same subject so that it supersedes the old one. text: one sentence about
    "User" in the third person, dates written as absolute ISO dates. op: "add" (a statement),
    "retract" (no longer true, e.g. "I'm not vegetarian any more": `text` says so and `kind` +
    `subject` name what it ends; subject "" when the rules cannot tell), or "forget" (the user asks
    to erase what matches: `text` is the request rewritten as a statement, e.g. "User lives in
    Paris" for "forget that I live in Paris", "User's address" for "forget my address"; `subject`
    names the whole subject to erase when the request names one, else ""). attributes: structured
    values, e.g. {"date": "2026-12-04"} for events and deadlines (ISO, absolute), {"status": "done"}
    for projects. message_id: the message that supports the item, when not the one being
    processed.
    """

    kind: str
    subject: str
    text: str
    confidence: float = 0.8
    pinned: bool = False
    attributes: dict = field(default_factory=dict)
    op: str = "add"
    message_id: int | None = None


def fingerprint(text: str) -> str:
    """The same statement, however cased or punctuated, gives the same fingerprint: an HMAC keyed by
    FINGERPRINT_KEY, so that stored fingerprints cannot be matched against guessed sentences."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    return hmac.new(settings.FINGERPRINT_KEY, " ".join(words).encode(), hashlib.sha256).hexdigest()


def unique(items: Iterable[ExtractedItem]) -> list[ExtractedItem]:
    """The items without repeats (same kind, op and statement), in order: forget and retract first,
    so that a message like "I moved to Berlin, I don't live in Paris any more" ends with the new
    value."""
    seen: set[tuple[str, str, str]] = set()
    result = []
    for item in items:
        key = (item.kind, item.op, fingerprint(item.text))
        if key not in seen:
            seen.add(key)
            result.append(item)
    return sorted(result, key=lambda i: OPS.index(i.op) if i.op in OPS else 0, reverse=True)
