"""EXTRACT: memories from a user's message, by the configured language model or by rules offline.

Both paths return `ExtractedItem`s (see `items`); storing them (ADD / UPDATE / SUPERSEDE / NO-OP,
retract, forget, provenance) is `memories.services`. Modules: `items` (the item and its
fingerprint), `dates` (relative dates made absolute), `rules` (the offline extractor and its topic
modules), `llm` (the structured-output call).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from memoryweb.ai import llm as ai

from .dates import find_dates, resolve_date
from .items import KINDS, MAX_ITEM_CHARS, OPS, SINGLE_VALUED_SUBJECTS, ExtractedItem, fingerprint
from .llm import EXTRACTION_PROMPT, EXTRACTION_SCHEMA, HistoryEntry, extract_with_llm
from .rules import extract_with_rules

logger = logging.getLogger(__name__)

__all__ = [
    "EXTRACTION_PROMPT",
    "EXTRACTION_SCHEMA",
    "KINDS",
    "MAX_ITEM_CHARS",
    "OPS",
    "SINGLE_VALUED_SUBJECTS",
    "ExtractedItem",
    "HistoryEntry",
    "extract",
    "extract_with_llm",
    "extract_with_rules",
    "find_dates",
    "fingerprint",
    "resolve_date",
]


def extract(
    text: str,
    history: Sequence[HistoryEntry],
    *,
    now: datetime | None = None,
    message_id: int | None = None,
) -> tuple[list[ExtractedItem], str]:
    """Memories in `text` and the extractor that found them ("llm", "rules" or "rules-fallback").

    `history`: the earlier user messages of the conversation, oldest first, as (message id, text)
    pairs (plain strings still work, without ids); `now`: the message's time, for relative dates;
    `message_id`: the message's own id. With a model configured its answer is used; if it fails
    (timeout, malformed output after retries) the rules run instead, so a message is never left
    without extraction.
    """
    if ai.is_configured():
        try:
            return extract_with_llm(text, history, now=now, message_id=message_id), "llm"
        except ai.LLMError as exc:
            logger.warning("LLM extraction failed (%s); using the rule-based extractor", exc)
            return extract_with_rules(text, now=now), "rules-fallback"
    return extract_with_rules(text, now=now), "rules"
