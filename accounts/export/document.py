"""The export's two files: the JSON document, assembled from the privacy registry's areas in the
manifest's section order, and the Markdown file for people, rendered by templates/accounts/export.md
from values formatted and escaped here."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.serializers.json import DjangoJSONEncoder
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.export.manifest import FORMAT, FORMAT_VERSION, SECTION_ORDER
from accounts.receipts import erased_summary
from memoryweb.privacy import PrivacyArea, areas

MARKDOWN_TEMPLATE = "accounts/export.md"


def export_areas() -> list[PrivacyArea]:
    """The registered privacy areas in the export's section order (`SECTION_ORDER`, which must name
    every area: an area left out would be data missing from the export)."""
    by_label = {area.label: area for area in areas()}
    if set(by_label) != set(SECTION_ORDER):
        raise ImproperlyConfigured(
            f"the export's SECTION_ORDER {SECTION_ORDER} does not list the privacy areas {sorted(by_label)}"
        )
    return [by_label[label] for label in SECTION_ORDER]


def export_document(*, user, on_progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Everything kept about `user` as JSON-ready data (datetimes as ISO 8601 strings).
    `on_progress` gets a percentage (up to 80) after each section."""
    document: dict[str, Any] = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "generated_at": timezone.now(),
        "user_id": user.pk,
    }
    sections = export_areas()
    for done, area in enumerate(sections, start=1):
        document.update(area.export(user=user))
        if on_progress is not None:
            on_progress(80 * done // len(sections))
    return json.loads(json.dumps(document, cls=DjangoJSONEncoder))


def export_markdown(document: dict[str, Any]) -> str:
    """The export as a Markdown file for people: the same data as export.json, grouped and labelled.
    Text the user or the assistant wrote is quoted, with `<` and `>` escaped so no viewer runs
    it."""
    return render_to_string(MARKDOWN_TEMPLATE, _markdown_context(document))


# --- The Markdown file's values: every one a string, formatted and escaped for the template -------


def _markdown_context(document: dict[str, Any]) -> dict[str, Any]:
    account = document["account"]
    memories = document["memories"]
    by_id = {m["id"]: m for m in memories}
    return {
        "generated_at": _when(document["generated_at"]),
        "account": {
            "id": str(account["id"]),
            "username": _inline(account["username"]),
            "fields": _fields(account, ["email", "first_name", "last_name", "is_active"]),
            "joined": _when(account["date_joined"]),
            "last_login": _when(account["last_login"], "never"),
            "groups": _inline(", ".join(account["groups"])) or "none",
        },
        "memory_settings": _fields(
            document["memory_settings"],
            ["memory_enabled", "use_past_chats", "temporary_chat_hours"],
        ),
        "consents": [
            {
                "when": _when(c["created_at"]),
                "granted": "granted" if c["granted"] else "withdrawn",
                "purpose": _inline(c["purpose"]),
                "policy_version": str(c["policy_version"]),
                "method": _inline(c["method"]),
            }
            for c in document["consents"]
        ],
        "memory_groups": [
            {
                "title": "What I remember about you",
                "memories": [_memory(m, by_id) for m in memories if m["current"]],
            },
            {
                "title": "Earlier versions (superseded or ended)",
                "memories": [_memory(m, by_id) for m in memories if not m["current"]],
            },
        ],
        "conversations": [_conversation(c) for c in document["conversations"]],
        "episodes": [
            {
                "kind": str(e["kind"]),
                "id": str(e["id"]),
                "started": _when(e["started_at"]),
                "ended": _when(e["ended_at"]),
                "messages": ", ".join(str(i) for i in e["message_ids"]) or "none",
                "quote": _quote(e["text"]),
            }
            for e in document["episodes"]
        ],
        "access_events": [
            {
                "when": _when(e["created_at"]),
                "actor": str(e["actor"]),
                "count": str(e["items"]),
                "purpose": _inline(e["purpose"]),
                "conversation_id": str(e["conversation_id"]) if e["conversation_id"] else "",
                "api_key_id": str(e["api_key_id"]) if e["api_key_id"] else "",
            }
            for e in document["access_events"]
        ],
        "api_keys": [
            {
                "name": _inline(k["name"]),
                "id": str(k["id"]),
                "prefix": _inline(k["prefix"]),
                "created": _when(k["created_at"]),
                "last_used": _when(k["last_used_at"], "never"),
                "revoked": _when(k["revoked_at"]) if k["revoked_at"] else "",
                "scopes": _inline(", ".join(k["scopes"])) or "none",
                "expires": _when(k["expires_at"], "never"),
            }
            for k in document["api_keys"]
        ],
        "exports": [
            {"id": str(x["id"]), "status": str(x["status"]), "created": _when(x["created_at"])}
            for x in document["exports"]
        ],
        "imports": [
            {
                "id": str(i["id"]),
                "source": str(i["source"]) or "an export",
                "status": str(i["status"]),
                "created": _when(i["created_at"]),
                "imported": str(i["conversations_imported"]),
                "found": str(i["conversations_found"]),
            }
            for i in document["imports"]
        ],
        "admin_actions": [
            {
                "when": _when(a["action_time"]),
                "flag": str(a["action_flag"]),
                "content_type": str(a["content_type"]),
                "object_id": _inline(a["object_id"]),
                "change_message": _inline(a["change_message"]),
            }
            for a in document["admin_actions"]
        ],
        "erasure_receipts": [
            {
                "when": _when(r["created_at"]),
                "kind": str(r["kind"]).replace("_", " "),
                "erased": erased_summary(r["document"]["receipt"]),
                "id": str(r["id"]),
            }
            for r in document["erasure_receipts"]
        ],
    }


def _memory(memory: dict[str, Any], by_id: dict[int, dict[str, Any]]) -> dict[str, Any]:
    replaced_by = None
    if memory["superseded_by"] is not None:
        newer = by_id.get(memory["superseded_by"], {"text": ""})
        replaced_by = {"id": str(memory["superseded_by"]), "text": _inline(newer["text"])}
    return {
        "text": _inline(memory["text"]),
        "kind": str(memory["kind"]),
        "subject": _inline(memory["subject"]),
        "id": str(memory["id"]),
        "confidence": f"{memory['confidence']:.2f}",
        "source": str(memory["source"]),
        "pinned": bool(memory["pinned"]),
        "use_in_context": bool(memory["use_in_context"]),
        "valid_from": _when(memory["valid_from"]),
        "valid_until": _when(memory["valid_until"]) if memory["valid_until"] else "",
        "ends_at": _when(memory["ends_at"]) if memory["ends_at"] else "",
        "sources": ", ".join(str(i) for i in memory["source_message_ids"]) or "none",
        "replaced_by": replaced_by,
        "replaces": [
            {"id": str(older_id), "text": _inline(by_id[older_id]["text"])}
            for older_id in memory["supersedes"]
        ],
        "revisions": [
            {
                "when": _when(revision["created_at"]),
                "action": str(revision["action"]),
                "actor": str(revision["actor"]),
                "changed": bool(revision["old_text"]),
                "old_text": _inline(revision["old_text"]),
                "new_text": _inline(revision["new_text"]),
            }
            for revision in memory["revisions"]
        ],
    }


def _conversation(conversation: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": _inline(conversation["title"]) or f"Conversation {conversation['id']}",
        "id": str(conversation["id"]),
        "created": _when(conversation["created_at"]),
        "ended": _when(conversation["ended_at"]) if conversation["ended_at"] else "",
        "temporary": bool(conversation["temporary"]),
        "origin": str(conversation["origin"]),
        "messages": [_message(m) for m in conversation["messages"]],
    }


def _message(message: dict[str, Any]) -> dict[str, Any]:
    who = "You" if message["role"] == "user" else "Assistant"
    if message["speaker"]:
        who += f" ({_inline(message['speaker'])})"
    recalled = ", ".join(
        f"memory {r['memory_id']}" if r["memory_id"] else f"episode {r['episode_id']}"
        for r in message["recalls"]
    )
    return {
        "who": who,
        "when": _when(message["created_at"]),
        "id": str(message["id"]),
        "recalled": recalled,
        "quote": _quote(message["content"]),
    }


def _fields(values: dict[str, Any], names: list[str]) -> list[tuple[str, str]]:
    return [(name.replace("_", " "), _inline(_text(values[name]))) for name in names]


def _when(value: str | None, missing: str = "—") -> str:
    """An ISO 8601 time from export.json, for people: `2026-03-01 14:05:09 UTC`."""
    if not value:
        return missing
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _text(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _inline(text: str | None) -> str:
    return _escape(" ".join((text or "").split()))


def _quote(text: str) -> list[str]:
    return [f"> {_escape(line)}".rstrip() for line in text.splitlines()] or [">"]
