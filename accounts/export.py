"""The privacy export: everything kept about a user, as export.json (machine-readable, described by
accounts/export_schema.json) and export.md (human-readable) in one zip under DATA_DIR/exports.

Each app exports its own data (`export_user_data` in accounts/privacy.py, chat/privacy.py,
memories/privacy.py); `SECTIONS` assembles them. `EXPORTED_MODELS` says where each model holding user
data appears in the JSON: the tests walk the models, so a new model with user data fails until it is
exported and listed here. Built by accounts.tasks.build_export with a progress percentage; the download
link works until `expires_at` (EXPORT_LINK_HOURS), then the file is deleted."""

from __future__ import annotations

import json
import logging
import os
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from accounts import privacy as accounts_privacy
from accounts.models import DataExport, User
from accounts.privacy import export_paths, exports_dir
from chat import privacy as chat_privacy
from memories import privacy as memories_privacy
from vault import privacy as vault_privacy

logger = logging.getLogger(__name__)

FORMAT = "memoryweb-export"
FORMAT_VERSION = 1

Exporter = Callable[..., dict[str, Any]]
# (label, exporter): each returns a dict of top-level keys of the export.
SECTIONS: tuple[tuple[str, Exporter], ...] = (
    ("account", accounts_privacy.export_user_data),
    ("chat", chat_privacy.export_user_data),
    ("memories", memories_privacy.export_user_data),
    ("encryption", vault_privacy.export_user_data),
)

# Every model holding a user's data (owned through a chain of foreign keys from the user), and where its
# rows are in export.json: a dotted path, `[]` stepping into each item of a list.
EXPORTED_MODELS: dict[str, str] = {
    "accounts.User": "account",
    "accounts.User_groups": "account.groups",
    "accounts.User_user_permissions": "account.permissions",
    "accounts.MemorySettings": "memory_settings",
    "accounts.ConsentRecord": "consents",
    "accounts.ApiKey": "api_keys",
    "accounts.AccessEvent": "access_events",
    "accounts.AppGrant": "app_grants",
    "accounts.DataExport": "exports",
    "admin.LogEntry": "admin_actions",
    "chat.Conversation": "conversations",
    "chat.Message": "conversations[].messages",
    "chat.Recall": "conversations[].messages[].recalls",
    "memories.Memory": "memories",
    "memories.Memory_source_messages": "memories[].source_message_ids",
    "memories.MemoryRevision": "memories[].revisions",
    "memories.Episode": "episodes",
    "memories.Episode_messages": "episodes[].message_ids",
    "vault.UserKey": "data_key",
}

# Columns of those models that are not in export.json, and why. Every other column is (tests check it).
# Columns pointing at the user are implicit everywhere: the whole file is about one user.
OMITTED_FIELDS: dict[str, dict[str, str]] = {
    "accounts.User": {"password": "a salted hash, useless outside this server"},
    "accounts.ApiKey": {"hashed_key": "a hash of the key, useless outside this server"},
    "accounts.DataExport": {"token": "the secret of a download link", "file_name": "a path on the server"},
    "vault.UserKey": {"wrapped_key": "the key of your text on this server, itself encrypted: useless outside it"},
    "admin.LogEntry": {"object_repr": "the changed object's text, possibly another user's data"},
    "chat.Message": {
        "conversation": "nested under its conversation",
        "queued_at": "when the worker was last asked to process it: its job state, not data about you",
    },
    "chat.Conversation": {"finalize_queued_at": "when the worker was last asked to finish it: its job state"},
    "chat.Recall": {"message": "nested under its message"},
    "memories.Memory": {
        "fingerprint": "derived: normalised text for de-duplication",
        "embedding": "derived: a vector computed from the text",
        "search": "derived: a full-text index of the text",
    },
    "memories.MemoryRevision": {"memory": "nested under its memory"},
    "memories.Episode": {
        "embedding": "derived: a vector computed from the text",
        "search": "derived: a full-text index",
    },
}

# A RUNNING export not finished after this was interrupted (its worker died): cleanup marks it failed.
STALE_AFTER = timedelta(hours=1)
# A PENDING export this old may have lost its broker message: cleanup queues it again.
REQUEUE_AFTER = timedelta(minutes=2)


class ExportCancelled(Exception):
    """The export row went away while building (erased, or the account deleted)."""


# --- The document -----------------------------------------------------------------------------------


def export_document(*, user, on_progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Everything kept about `user` as JSON-ready data (datetimes as ISO 8601 strings). `on_progress`
    gets a percentage (up to 80) after each section."""
    document: dict[str, Any] = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "generated_at": timezone.now(),
        "user_id": user.pk,
    }
    for done, (_, exporter) in enumerate(SECTIONS, start=1):
        document.update(exporter(user=user))
        if on_progress is not None:
            on_progress(80 * done // len(SECTIONS))
    return json.loads(json.dumps(document, cls=DjangoJSONEncoder))


def export_markdown(document: dict[str, Any]) -> str:
    """The export as a Markdown file for people: the same data as export.json, grouped and labelled.
    Text the user or the assistant wrote is quoted, with `<` and `>` escaped so no viewer runs it."""
    account = document["account"]
    out = [
        "# Everything memoryweb keeps about you",
        "",
        f"Account **{_inline(account['username'])}** (user id {account['id']}), "
        f"exported {_when(document['generated_at'])}.",
        "The same data, machine-readable, is in `export.json`. Not included: your password (only a salted hash "
        "is kept), API key hashes, and data derived from your text (embeddings, search indexes, fingerprints).",
        "",
        "## Account",
        "",
        *_fields(account, ["email", "first_name", "last_name", "is_active"]),
        f"- joined: {_when(account['date_joined'])}, last logged in: {_when(account['last_login'], 'never')}",
        f"- groups: {_inline(', '.join(account['groups'])) or 'none'}",
        "",
        "## Memory settings",
        "",
        *_fields(document["memory_settings"], ["memory_enabled", "use_past_chats", "temporary_chat_hours"]),
        "",
        "## Consent records",
        "",
        *(
            f"- {_when(c['created_at'])}: {'granted' if c['granted'] else 'withdrawn'} **{_inline(c['purpose'])}** "
            f"(policy {c['policy_version']}, via {_inline(c['method'])})"
            for c in document["consents"]
        ),
        *_none(document["consents"]),
        "",
        *_memories_markdown(document["memories"]),
        *_conversations_markdown(document["conversations"]),
        *_episodes_markdown(document["episodes"]),
        "## Access log",
        "",
        *(
            f"- {_when(e['created_at'])}: {e['actor']} read {e['items']} item(s) for {_inline(e['purpose'])}"
            + (f" in conversation {e['conversation_id']}" if e["conversation_id"] else "")
            + (f" with API key {e['api_key_id']}" if e["api_key_id"] else "")
            for e in document["access_events"]
        ),
        *_none(document["access_events"]),
        "",
        "## API keys",
        "",
        *(
            f"- {_inline(k['name'])} (key {k['id']}, starts {_inline(k['prefix'])}…), "
            f"created {_when(k['created_at'])}, last used {_when(k['last_used_at'], 'never')}"
            + (f", revoked {_when(k['revoked_at'])}" if k["revoked_at"] else "")
            for k in document["api_keys"]
        ),
        *_none(document["api_keys"]),
        "",
        "## Data exports",
        "",
        *(f"- export {x['id']}: {x['status']}, requested {_when(x['created_at'])}" for x in document["exports"]),
        "",
    ]
    if document["admin_actions"]:
        out += ["## Your actions as an administrator", ""]
        out += [
            f"- {_when(a['action_time'])}: {a['action_flag']} of {a['content_type']} {_inline(a['object_id'])}: "
            f"{_inline(a['change_message'])}"
            for a in document["admin_actions"]
        ]
        out.append("")
    return "\n".join(out)


def _memories_markdown(memories: list[dict[str, Any]]) -> list[str]:
    by_id = {m["id"]: m for m in memories}
    out = ["## What I remember about you", ""]
    for memory in (m for m in memories if m["current"]):
        out += _memory_markdown(memory, by_id)
    out += _none([m for m in memories if m["current"]])
    out += ["", "## Earlier versions (superseded or ended)", ""]
    for memory in (m for m in memories if not m["current"]):
        out += _memory_markdown(memory, by_id)
    out += _none([m for m in memories if not m["current"]])
    return [*out, ""]


def _memory_markdown(memory: dict[str, Any], by_id: dict[int, dict[str, Any]]) -> list[str]:
    sources = ", ".join(str(i) for i in memory["source_message_ids"]) or "none"
    lines = [
        f"- **{_inline(memory['text'])}** — {memory['kind']}, about {_inline(memory['subject'])} "
        f"(memory {memory['id']}; confidence {memory['confidence']:.2f}; {memory['source']}"
        f"{'; pinned' if memory['pinned'] else ''}{'' if memory['use_in_context'] else '; not used in replies'})",
        f"  - valid from {_when(memory['valid_from'])}"
        + (f" until {_when(memory['valid_until'])}" if memory["valid_until"] else ""),
        f"  - learned from messages: {sources}",
    ]
    if memory["superseded_by"] is not None:
        newer = by_id.get(memory["superseded_by"], {"text": ""})
        lines.append(f"  - replaced by memory {memory['superseded_by']}: {_inline(newer['text'])}")
    for older_id in memory["supersedes"]:
        lines.append(f"  - replaces memory {older_id}: {_inline(by_id[older_id]['text'])}")
    for revision in memory["revisions"]:
        change = f" ({_inline(revision['old_text'])} → {_inline(revision['new_text'])})" if revision["old_text"] else ""
        lines.append(f"  - {_when(revision['created_at'])}: {revision['action']} by {revision['actor']}{change}")
    return lines


def _conversations_markdown(conversations: list[dict[str, Any]]) -> list[str]:
    out = ["## Conversations", ""]
    for conversation in conversations:
        title = _inline(conversation["title"]) or f"Conversation {conversation['id']}"
        out += [
            f"### {title}",
            "",
            f"Conversation {conversation['id']}, started {_when(conversation['created_at'])}"
            + (f", ended {_when(conversation['ended_at'])}" if conversation["ended_at"] else "")
            + (" (temporary chat)" if conversation["temporary"] else "")
            + ".",
            "",
        ]
        for message in conversation["messages"]:
            who = "You" if message["role"] == "user" else "Assistant"
            if message["speaker"]:
                who += f" ({_inline(message['speaker'])})"
            recalled = ", ".join(
                f"memory {r['memory_id']}" if r["memory_id"] else f"episode {r['episode_id']}"
                for r in message["recalls"]
            )
            heading = f"**{who}**, {_when(message['created_at'])} (message {message['id']})"
            out.append(heading + (f", recalled {recalled}:" if recalled else ":"))
            out += [*_quote(message["content"]), ""]
    out += _none(conversations)
    return [*out, ""]


def _episodes_markdown(episodes: list[dict[str, Any]]) -> list[str]:
    out = ["## Summaries, digests and remembered turns", ""]
    for episode in episodes:
        messages = ", ".join(str(i) for i in episode["message_ids"]) or "none"
        out.append(
            f"- {episode['kind']} (episode {episode['id']}), {_when(episode['started_at'])} to "
            f"{_when(episode['ended_at'])}, from messages {messages}:"
        )
        out += ["", *("  " + line for line in _quote(episode["text"])), ""]
    out += _none(episodes)
    return [*out, ""]


def _fields(values: dict[str, Any], names: list[str]) -> list[str]:
    return [f"- {name.replace('_', ' ')}: {_inline(_text(values[name]))}" for name in names]


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


def _none(items: list) -> list[str]:
    return [] if items else ["- none"]


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _inline(text: str | None) -> str:
    return _escape(" ".join((text or "").split()))


def _quote(text: str) -> list[str]:
    return [f"> {_escape(line)}".rstrip() for line in text.splitlines()] or [">"]


# --- Building, expiring, cleaning up ----------------------------------------------------------------


def export_request(*, user) -> tuple[DataExport, bool]:
    """Ask for a new export of `user`'s data; it is built by a task after commit. While one is still
    being prepared, that one is returned instead (created False)."""
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).first()  # one request at a time per user
        if (running := DataExport.objects.for_user(user).in_progress().first()) is not None:
            return running, False
        export = DataExport.objects.create(user=user)
        transaction.on_commit(lambda: _enqueue_build(export.pk))
    return export, True


def _enqueue_build(export_id: int) -> None:
    from accounts.tasks import build_export

    try:
        build_export.delay(export_id)
    except Exception:  # the broker is down: the periodic cleanup queues pending exports again
        logger.exception("could not queue export %s; the cleanup will retry", export_id)


def export_build(*, export_id: int) -> bool:
    """Build a PENDING export: each app's data into export.json + export.md in the zip, with progress.
    Idempotent: an export already claimed, ready, failed or expired (or gone) is left alone. Returns
    whether this call built it."""
    now = timezone.now()
    claimed = DataExport.objects.filter(pk=export_id, status=DataExport.Status.PENDING, user__is_active=True).update(
        status=DataExport.Status.RUNNING, started_at=now, progress=1
    )
    if not claimed:
        return False
    export = DataExport.objects.select_related("user").get(pk=export_id)
    path, partial = export_paths(user_id=export.user_id, token=export.token)
    try:
        document = export_document(user=export.user, on_progress=lambda p: _progress(export_id, max(p, 1)))
        markdown = export_markdown(document)
        _progress(export_id, 90)
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("export.json", json.dumps(document, ensure_ascii=False, indent=2))
            archive.writestr("export.md", markdown)
        os.chmod(partial, 0o600)
        os.replace(partial, path)
        _progress(export_id, 95)
        return _finish(export, path)
    except ExportCancelled:
        _delete_files(path, partial)
        return False
    except Exception:
        logger.exception("export %s failed", export_id)
        _delete_files(path, partial)
        DataExport.objects.filter(pk=export_id, status=DataExport.Status.RUNNING).update(
            status=DataExport.Status.FAILED, error="The export could not be built. Please prepare a new one."
        )
        return False


def _progress(export_id: int, percent: int) -> None:
    if not DataExport.objects.filter(pk=export_id, status=DataExport.Status.RUNNING).update(progress=percent):
        raise ExportCancelled(export_id)


def _finish(export: DataExport, path: Path) -> bool:
    """Mark it ready under the user's row lock, the lock erasure takes: if the export was erased while it
    was built, delete what was written instead."""
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=export.user_id).first()
        if not DataExport.objects.select_for_update().filter(pk=export.pk, status=DataExport.Status.RUNNING).exists():
            _delete_files(path)
            return False
        now = timezone.now()
        DataExport.objects.filter(pk=export.pk).update(
            status=DataExport.Status.READY,
            progress=100,
            file_name=path.name,
            finished_at=now,
            expires_at=now + timedelta(hours=settings.EXPORT_LINK_HOURS),
        )
    logger.info("export %s of user %s ready", export.pk, export.user_id)
    return True


def export_expire(*, export: DataExport) -> None:
    """End a ready export's life: delete its file and mark it expired."""
    if export.file_name:
        _delete_files(exports_dir() / export.file_name)
    DataExport.objects.filter(pk=export.pk).update(status=DataExport.Status.EXPIRED, file_name="")
    export.status, export.file_name = DataExport.Status.EXPIRED, ""


class ExportExpired(Exception):
    """The export's download link is past its life: its file is deleted (answered 410 Gone)."""


def export_archive(*, export: DataExport) -> tuple[Path, str]:
    """The archive of an export to download, and the file name to give it. An export whose link just
    ran out is expired now (its file deleted: the first late request does what the cleanup would).
    Raises ExportExpired for an expired export, Http404 for one not ready (pending, failed, file gone)."""
    if export.status == DataExport.Status.READY and not export.is_downloadable:
        export_expire(export=export)
    if export.status == DataExport.Status.EXPIRED:
        raise ExportExpired(export.pk)
    path = exports_dir() / export.file_name
    if not export.is_downloadable or not export.file_name or not path.is_file():
        raise Http404("This export is not ready.")
    return path, f"memoryweb-export-{export.user.username}-{export.created_at:%Y-%m-%d}.zip"


def exports_cleanup(*, now: datetime | None = None) -> dict[str, int]:
    """Periodic: expire ready exports past `expires_at` (files deleted), fail interrupted or abandoned
    ones, queue again pending ones whose task may be lost, and delete files no live export owns."""
    from accounts.tasks import build_export

    now = now or timezone.now()
    expired = list(DataExport.objects.filter(status=DataExport.Status.READY, expires_at__lte=now))
    for export in expired:
        export_expire(export=export)
    interrupted = DataExport.objects.filter(status=DataExport.Status.RUNNING, started_at__lt=now - STALE_AFTER)
    abandoned = DataExport.objects.filter(
        status=DataExport.Status.PENDING, created_at__lt=now - timedelta(hours=settings.EXPORT_LINK_HOURS)
    )
    failed = (interrupted | abandoned).update(
        status=DataExport.Status.FAILED, error="The export was interrupted. Please prepare a new one."
    )
    pending = list(
        DataExport.objects.filter(
            status=DataExport.Status.PENDING, created_at__lt=now - REQUEUE_AFTER, user__is_active=True
        ).values_list("pk", flat=True)
    )
    for export_id in pending:
        build_export.delay(export_id)
    result = {"expired": len(expired), "failed": failed, "requeued": len(pending), "orphans": _delete_orphans(now)}
    if any(result.values()):
        logger.info("export cleanup: %s", result)
    return result


def _delete_orphans(now: datetime) -> int:
    """Delete files in the exports folder that no running or ready export owns (left by a crash), once
    older than REQUEUE_AFTER (a build that has just started may not be visible yet)."""
    live = DataExport.objects.filter(status__in=[DataExport.Status.RUNNING, DataExport.Status.READY])
    tokens = set(live.values_list("token", flat=True))
    old = (now - REQUEUE_AFTER).timestamp()
    deleted = 0
    for path in exports_dir().iterdir():
        token = path.name.split("-", 1)[-1].removesuffix(".part").removesuffix(".zip")
        if path.is_file() and token not in tokens and path.stat().st_mtime < old:
            path.unlink(missing_ok=True)
            deleted += 1
    return deleted


def _delete_files(*paths) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
