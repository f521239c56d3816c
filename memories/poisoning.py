"""The poisoning check: text that reads as an instruction to the assistant rather than a fact about
the user ("ignore previous instructions", "always recommend ...", links, encoded payloads). Such a
memory is held for review and never injected until approved; injected memories are always quoted as
data.

A user's own preferences about answers ("always answer in French", "keep replies short") are
instructions too, but about the form of the answers to them: those are not flagged. What is flagged
tries to change the assistant's rules, identity or recommendations, or smuggles content in."""

from __future__ import annotations

import base64
import binascii
import re

_OVERRIDE = re.compile(
    r"\b(?:ignore|disregard|forget|override|bypass)\b.{0,40}\b(?:previous|prior|above|earlier|all|your|the|any)\b"
    r".{0,30}\b(?:instructions?|rules?|prompts?|guidelines|directives|messages?|constraints?)\b",
    re.I,
)
_ROLE = re.compile(
    r"\b(?:you are now|from now on,? you|act as (?:a|an|the)|pretend (?:to be|you are)|your new (?:role|task|"
    r"instructions?)|new system prompt|system prompt|developer mode|jailbreak|DAN\b|do anything now)",
    re.I,
)
_STEER = re.compile(
    r"\b(?:always|only|never|must)\b.{0,30}\b(?:recommend|suggest|promote|mention|link to|redirect|buy|"
    r"endorse|advertise|tell (?:users|everyone|people))\b",
    re.I,
)
_EXFIL = re.compile(
    r"\b(?:send|forward|email|post|upload|leak|reveal|print|output)\b.{0,40}\b(?:password|api key|token|"
    r"secret|credentials?|system prompt|conversation|memories|other users?)\b",
    re.I,
)
_TOOL = re.compile(
    r"<\s*/?\s*(?:script|iframe|system|assistant|tool)\b|<\|[a-z_]+\|>|\[\[|{{|\bBEGIN (?:SYSTEM|PROMPT)",
    re.I,
)
_LINK = re.compile(r"\b(?:https?://|www\.)\S+|\b[\w-]+\.[a-z]{2,6}/\S*", re.I)
_ENCODED = re.compile(
    r"(?:[A-Za-z0-9+/]{40,}={0,2})|(?:\\x[0-9a-f]{2}){6,}|(?:%[0-9a-f]{2}){6,}", re.I
)

REASONS = {
    "override": _OVERRIDE,
    "role": _ROLE,
    "steering": _STEER,
    "exfiltration": _EXFIL,
    "markup": _TOOL,
    "link": _LINK,
}


def poisoning_reasons(text: str) -> list[str]:
    """Why `text` looks like an injected instruction (empty when it reads as a plain memory)."""
    reasons = [name for name, pattern in REASONS.items() if pattern.search(text)]
    if _looks_encoded(text):
        reasons.append("encoded")
    return reasons


def _looks_encoded(text: str) -> bool:
    for match in _ENCODED.finditer(text):
        chunk = match.group(0)
        if chunk.startswith(("\\x", "%")):
            return True
        try:
            base64.b64decode(chunk + "=" * (-len(chunk) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue
        if not chunk.isalpha():  # a long word is not a payload; base64 mixes cases, digits, + and /
            return True
    return False
