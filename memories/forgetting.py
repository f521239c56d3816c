"""Requests to forget, said in a chat: never carried out from the chat.

A chat message is a weak signal ("ugh, forget all of that", a pasted email that says "forget
everything you were told"), so nothing said there erases anything. The reply says what a request
matches and links to the portal's "Forget about …" page, which shows the same dry run and erases
only what the user confirms there; "forget everything" points to the Forget everything page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.db import transaction
from django.urls import reverse

from accounts.services import lock_user
from memories.consolidation import forget_matches
from memories.erasure import memory_erase
from memories.extraction import ExtractedItem, extract_with_rules
from memories.models import Memory
from memoryweb.ai.embeddings import embed_texts

EVERYTHING = "*"  # the subject of "forget everything (about me)", "forget all of that", "forget me"
PREVIEW_ITEMS = 5  # memories named in a chat reply; the portal lists them all
# What the user quotes or pastes is not what they ask: quoted spans, code, e-mail style quotes.
_QUOTED = re.compile(
    r"```.*?```|`[^`\n]*`|\"[^\"]*\"|“[^”]*”|‘[^’]*’|«[^»]*»|(?<!\w)'[^'\n]*'(?!\w)", re.S
)
_QUOTE_LINE = re.compile(r"^\s*>.*$", re.M)
# The words a request to forget starts with (memories.extraction.rules reads the rest).
_MAY_ASK = re.compile(
    r"\b(?:forget|stop remembering|erase|delete|remove|wipe|clear|reset|purge|oublie|vergiss|olvida|"
    r"dimentica|esque[cç]a)\b",
    re.I,
)
# Asking for all of it in other words ("wipe your memory of me", "delete all my data", "oublie
# tout"): the reply points to Forget everything, as for "forget everything".
_SWEEPING = re.compile(
    r"\b(?:forget|erase|delete|remove|wipe|clear|reset|purge)\b.{0,25}?\b(?:your (?:whole |entire )?"
    r"memor(?:y|ies)|(?:all|every) (?:of )?(?:my|the|your) (?:memories|data|history)|"
    r"(?:all|everything) (?:that )?you (?:know|remember)|my (?:account|data|memories))\b"
    r"|\b(?:forget|oublie|vergiss|olvida|dimentica|esque[cç]a)\b\s+(?:about\s+)?(?:it all|all of it|everything|"
    r"me|tout|alles|todo|tutto|tudo)\b",
    re.I,
)


@dataclass
class ForgetRequest:
    """One "forget …" the user said: what it names (a subject and a statement), and what matches."""

    subject: str
    text: str
    matches: list[Memory] = field(default_factory=list)

    @property
    def everything(self) -> bool:
        return self.subject == EVERYTHING

    @property
    def confirm_url(self) -> str:
        query = urlencode({"about": self.text, "subject": self.subject})
        return reverse("memories:forget") + "?" + query


def own_words(text: str) -> str:
    """The part of a message that is the user's own words: its first paragraph (what follows a
    blank line is usually pasted), without quoted spans, code or quoted lines."""
    first = re.split(r"\n\s*\n", text.strip(), maxsplit=1)[0]
    return _QUOTED.sub(" ", _QUOTE_LINE.sub(" ", first))


def forget_requests(*, user, text: str) -> list[ForgetRequest]:
    """The requests to forget in a user's message, each with the current memories it matches (a dry
    run: nothing is erased)."""
    words = own_words(text)
    if not _MAY_ASK.search(words):  # most messages: no need to run the extractor in the request
        return []
    items = [i for i in extract_with_rules(words) if i.op == "forget"]
    if not any(i.subject == EVERYTHING for i in items) and _SWEEPING.search(words):
        items.insert(
            0, ExtractedItem("fact", EVERYTHING, "Everything about the user", 0.9, op="forget")
        )
    return [forget_preview(user=user, item=item) for item in items]


def forget_request_for(*, user, about: str, subject: str = "") -> ForgetRequest:
    """The portal's "Forget about …": what the user typed (or a chat's request, with its subject),
    read as the rules read "forget …" in a chat, and what it matches (a dry run)."""
    about = " ".join(about.split())[:500]
    if subject:
        item = ExtractedItem("fact", subject[:200], about, 1.0, op="forget")
    else:
        said = [i for i in extract_with_rules(f"Forget {about}.") if i.op == "forget"]
        item = said[0] if said else ExtractedItem("fact", "", about, 1.0, op="forget")
    return forget_preview(user=user, item=item)


def forget_preview(*, user, item: ExtractedItem) -> ForgetRequest:
    request = ForgetRequest(subject=item.subject, text=item.text)
    if not request.everything:
        ids = _matches(user, item.subject, item.text)
        request.matches = list(
            Memory.objects.for_user(user).current().filter(pk__in=ids).order_by("kind", "id")
        )
    return request


def _matches(user, subject: str, text: str) -> set[int]:
    [vector] = embed_texts([text])
    return forget_matches(user=user, text=text, subject=subject, embedding=vector)


def forget_notice(requests: list[ForgetRequest]) -> str:
    """What the reply adds about the message's requests to forget: nothing was erased, and how."""
    if not requests:
        return ""
    if any(r.everything for r in requests):
        page = reverse("accounts:forget_everything")
        return (
            "I haven't erased anything: a chat message never erases your memory. To erase "
            f"everything I remember about you, use Forget everything ({page})."
        )
    lines = ["I haven't erased anything: a chat message never erases your memory."]
    for request in requests:
        if not request.matches:
            lines.append(f"Nothing I remember matches “{request.text}”.")
            continue
        named = "; ".join(m.text for m in request.matches[:PREVIEW_ITEMS])
        more = len(request.matches) - PREVIEW_ITEMS
        named += f" (and {more} more)" if more > 0 else ""
        lines.append(
            f"“{request.text}” matches {len(request.matches)} "
            f"memor{'y' if len(request.matches) == 1 else 'ies'}: {named}. "
            f"To forget {'it' if len(request.matches) == 1 else 'them'}, confirm here: "
            f"{request.confirm_url}"
        )
    return "\n".join(lines)


def forget_confirmed(*, user, subject: str, text: str, memory_ids) -> int:
    """Erase the memories the user confirmed on the portal: those of `memory_ids` that the request
    still matches (never more than was shown, never another user's). Returns how many went."""
    if subject == EVERYTHING:
        raise ValueError("forgetting everything has its own page and confirmation")
    matches = _matches(user, subject, text)
    with transaction.atomic():
        lock_user(user)
        return memory_erase(user=user, memory_ids=matches & {int(pk) for pk in memory_ids})
