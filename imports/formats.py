"""Reading ChatGPT and Claude data exports as a stream: the zip (its conversations.json read
without extracting it) or the bare JSON, one conversation at a time (ijson), so that a large export
never sits in memory whole. Which kind it is comes from the content, never the file's name.

ChatGPT: a list of conversations, each a `mapping` tree of nodes; what was kept is the branch from
`current_node` up to the root (edits and regenerations leave side branches). Claude: a list of
conversations with their `chat_messages` in order.
"""

from __future__ import annotations

import hashlib
import json
import math
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import ijson
from django.conf import settings

from chat.models import Conversation, Message

CHATGPT, CLAUDE = Conversation.Origin.CHATGPT.value, Conversation.Origin.CLAUDE.value
MEMBER_NAME = "conversations.json"
ZIP_MAGIC = b"PK\x03\x04"
BOM = b"\xef\xbb\xbf"
# ChatGPT content types that hold what was said; the others are tools, browsing, reasoning, the
# user's custom instructions.
CHATGPT_TEXT_TYPES = {"text", "multimodal_text"}
CLAUDE_ROLES = {
    "human": Message.Role.USER,
    "user": Message.Role.USER,
    "assistant": Message.Role.ASSISTANT,
}
# Claude's messages without a parent point at this one.
CLAUDE_ROOT = "00000000-0000-4000-8000-000000000000"
# Shown for a message longer than MESSAGE_MAX_CHARS, where it was cut.
CUT_MARK = " […]"


class ExportError(Exception):
    """The file is not an export we can read; the message says why, for the user."""


@dataclass
class PastTurn:
    role: str  # Message.Role
    text: str
    created_at: datetime | None
    external_id: str


@dataclass
class ExportedConversation:
    """One conversation of the export, as read: `messages` empty when it holds nothing said (or
    could not be read: `problem` says why)."""

    position: int  # its place in the file, from 0
    external_id: str
    title: str
    created_at: datetime | None
    messages: list[PastTurn] = field(default_factory=list)
    problem: str = ""
    cut: int = 0  # messages longer than MESSAGE_MAX_CHARS, cut there


# --- Opening the file -----------------------------------------------------------------------------


class _Counted:
    """A binary stream read up to `limit` bytes (more is an error: a zip bomb, or a file past the
    setting), skipping a UTF-8 byte order mark, counting what was read (the progress)."""

    def __init__(self, raw: IO[bytes], limit: int):
        self.raw, self.limit, self.read_bytes = raw, limit, 0
        self._first = True

    def read(self, size: int = -1) -> bytes:
        size = 64 * 1024 if size is None or size < 0 else size
        try:
            chunk = self.raw.read(size)
        except zipfile.BadZipFile as error:  # e.g. a bad CRC, or sizes that do not add up
            raise ExportError(f"The zip file is damaged ({error}).") from error
        except (EOFError, OSError) as error:  # zlib errors among them
            raise ExportError("The zip file is damaged (its data cannot be unpacked).") from error
        if self._first:
            self._first = False
            if chunk.startswith(BOM):
                chunk = chunk[len(BOM) :]
        self.read_bytes += len(chunk)
        if self.read_bytes > self.limit:
            raise ExportError(
                f"The conversations in this file are larger than {self.limit:,} bytes "
                "(IMPORT_MAX_JSON_BYTES)."
            )
        return chunk


@contextmanager
def open_conversations(path: Path) -> Iterator[tuple[_Counted, int]]:
    """The export's conversations.json as a stream (from inside a zip, or the file itself), and its
    size in bytes."""
    limit = settings.IMPORT_MAX_JSON_BYTES
    with open(path, "rb") as raw:
        is_zip = raw.read(4) == ZIP_MAGIC
        raw.seek(0)
        if not is_zip:
            yield _Counted(raw, limit), path.stat().st_size
            return
        try:
            archive = zipfile.ZipFile(raw)
        except zipfile.BadZipFile as error:
            raise ExportError(f"The zip file is damaged ({error}).") from error
        with archive:
            member = _member(archive)
            if member.file_size > limit:
                raise ExportError(
                    f"{member.filename} in the zip is {member.file_size:,} bytes, more than "
                    f"{limit:,} (IMPORT_MAX_JSON_BYTES)."
                )
            try:
                stream = archive.open(member)
            except (RuntimeError, NotImplementedError, zipfile.BadZipFile) as error:
                raise ExportError(
                    f"{member.filename} in the zip cannot be read ({error})."
                ) from error
            with stream:
                yield _Counted(stream, limit), member.file_size


def _member(archive: zipfile.ZipFile) -> zipfile.ZipInfo:
    """conversations.json, at the top of the zip or the least deep in it."""
    found = [
        info
        for info in archive.infolist()
        if not info.is_dir() and info.filename.replace("\\", "/").rsplit("/", 1)[-1] == MEMBER_NAME
    ]
    if not found:
        raise ExportError(
            "The zip holds no conversations.json: is it a ChatGPT or Claude data export?"
        )
    return min(found, key=lambda info: info.filename.count("/"))


# --- Reading it -----------------------------------------------------------------------------------


def detect(stream) -> str:
    """Which export this is (CHATGPT or CLAUDE), from its first conversation; ExportError for
    anything else."""
    for entry in _entries(stream):
        if isinstance(entry, dict):
            if "mapping" in entry:
                return CHATGPT
            if "chat_messages" in entry:
                return CLAUDE
        raise ExportError(
            "This JSON is not a ChatGPT or Claude export: its conversations have neither a "
            '"mapping" (ChatGPT) nor "chat_messages" (Claude).'
        )
    raise ExportError("The export holds no conversations.")


def conversations(stream, kind: str) -> Iterator[ExportedConversation]:
    """Each conversation of the export in file order; one that cannot be read comes with its
    `problem` (and no messages), the others go on."""
    read = _chatgpt if kind == CHATGPT else _claude
    for position, entry in enumerate(_entries(stream)):
        if not isinstance(entry, dict):
            yield ExportedConversation(position, "", "", None, problem="not a conversation")
            continue
        try:
            yield read(position, entry)
        except (TypeError, ValueError, AttributeError, KeyError, RecursionError) as error:
            yield ExportedConversation(
                position,
                _external_id(entry, kind),
                _clean(entry.get("title") or entry.get("name"))[:200],
                None,
                problem=f"could not be read ({type(error).__name__})",
            )


def _entries(stream) -> Iterator[Any]:
    """The items of the top-level JSON array, one at a time; ExportError for anything else."""
    try:
        events = ijson.parse(stream, use_float=True)
        first = next(events, None)
        if first is None or first[1] != "start_array":
            raise ExportError(
                "This JSON is not a ChatGPT or Claude export (not a list of conversations)."
            )
        yield from ijson.items(_Rest(first, events), "item")
    except ijson.JSONError as error:
        raise ExportError(_json_problem(error, getattr(stream, "read_bytes", 0))) from error
    except UnicodeDecodeError as error:
        raise ExportError("The file is not UTF-8 text.") from error


def _json_problem(error: Exception, near: int) -> str:
    """What is wrong with the JSON, in words: never the parser's message, which quotes the file."""
    said = str(error)
    if "premature EOF" in said:
        problem = "it ends too early (was the download cut off?)"
    elif "UTF8" in said or "UTF-8" in said:
        problem = "it holds bytes that are not UTF-8 text"
    else:
        problem = "it is not valid JSON"
    return f"The file is neither a zip nor JSON we can read: {problem} (near byte {near:,})."


class _Rest:
    """The parser's events again from the first, for ijson.items (which takes an event stream)."""

    def __init__(self, first, events):
        self.first, self.events = first, events

    def __iter__(self):
        yield self.first
        yield from self.events


# --- ChatGPT --------------------------------------------------------------------------------------


def _chatgpt(position: int, entry: dict) -> ExportedConversation:
    mapping = entry.get("mapping")
    if not isinstance(mapping, dict):
        mapping = {}
    read = ExportedConversation(
        position,
        _external_id(entry, CHATGPT),
        _clean(entry.get("title"))[:200],
        _epoch(entry.get("create_time")) or _epoch(entry.get("update_time")),
    )
    for node in _branch(mapping, entry.get("current_node")):
        turn = _chatgpt_turn(node)
        if turn is not None:
            read.messages.append(turn)
    _finish(read)
    return read


def _branch(mapping: dict, current: Any) -> list[dict]:
    """The nodes from the root down to `current` (or, when it is missing, the latest leaf): the
    branch that was kept. A cycle of parents stops where it closes."""
    if not isinstance(current, str) or not isinstance(mapping.get(current), dict):
        current = _latest_leaf(mapping)
    path, seen = [], set()
    while isinstance(current, str) and current not in seen:
        node = mapping.get(current)
        if not isinstance(node, dict):
            break
        seen.add(current)
        path.append(node)
        current = node.get("parent")
    return path[::-1]


def _latest_leaf(mapping: dict) -> str | None:
    leaves = [
        (key, node)
        for key, node in mapping.items()
        if isinstance(node, dict) and not node.get("children")
    ]
    if not leaves:
        return None

    def when(item):
        message = item[1].get("message")
        created = _epoch(message.get("create_time")) if isinstance(message, dict) else None
        return created.timestamp() if created else 0.0

    return max(leaves, key=when)[0]


def _chatgpt_turn(node: dict) -> PastTurn | None:
    """What the user or the assistant said in a node; None for the rest (empty roots, system,
    tools, hidden messages, an assistant's calls to a tool, images alone)."""
    message = node.get("message")
    if not isinstance(message, dict):
        return None
    author = message.get("author")
    role = author.get("role") if isinstance(author, dict) else None
    if role not in (Message.Role.USER, Message.Role.ASSISTANT):
        return None
    metadata = message.get("metadata")
    if isinstance(metadata, dict) and metadata.get("is_visually_hidden_from_conversation"):
        return None
    if message.get("recipient") not in (None, "all"):
        return None  # the assistant calling a tool (browser, python, dall-e)
    content = message.get("content")
    if not isinstance(content, dict) or content.get("content_type") not in CHATGPT_TEXT_TYPES:
        return None
    parts = content.get("parts")
    if not isinstance(parts, list):
        return None
    texts = [part for part in parts if isinstance(part, str)]
    texts += [
        part["text"]
        for part in parts
        if isinstance(part, dict) and isinstance(part.get("text"), str)
    ]
    text = _clean("\n".join(texts))
    if not text:
        return None
    node_id = node.get("id") if isinstance(node.get("id"), str) else message.get("id")
    return PastTurn(role, text, _epoch(message.get("create_time")), _clean(node_id))


# --- Claude ---------------------------------------------------------------------------------------


def _claude(position: int, entry: dict) -> ExportedConversation:
    read = ExportedConversation(
        position,
        _external_id(entry, CLAUDE),
        _clean(entry.get("name"))[:200],
        _iso(entry.get("created_at")),
    )
    messages = entry.get("chat_messages")
    for message in _claude_branch(messages if isinstance(messages, list) else [], entry):
        turn = _claude_turn(message)
        if turn is not None:
            read.messages.append(turn)
    _finish(read)
    return read


def _claude_branch(messages: list, entry: dict) -> list:
    """The messages in order; when they say their parents and the conversation its current leaf,
    the branch from the root to that leaf."""
    leaf = entry.get("current_leaf_message_uuid")
    by_id = {m.get("uuid"): m for m in messages if isinstance(m, dict)}
    if not isinstance(leaf, str) or leaf not in by_id:
        return messages
    path, seen = [], set()
    while leaf in by_id and leaf not in seen and leaf != CLAUDE_ROOT:
        seen.add(leaf)
        path.append(by_id[leaf])
        leaf = by_id[leaf].get("parent_message_uuid")
    return path[::-1]


def _claude_turn(message: Any) -> PastTurn | None:
    if not isinstance(message, dict):
        return None
    role = CLAUDE_ROLES.get(message.get("sender"))
    if role is None:
        return None
    text = message.get("text")
    if not isinstance(text, str) or not text.strip():
        blocks = message.get("content")
        text = "\n".join(
            block["text"]
            for block in (blocks if isinstance(blocks, list) else [])
            if isinstance(block, dict)
            and block.get("type") == "text"
            and isinstance(block.get("text"), str)
        )
    text = _clean(text)
    if not text:
        return None
    return PastTurn(role, text, _iso(message.get("created_at")), _clean(message.get("uuid")))


# --- Shared ---------------------------------------------------------------------------------------


def _finish(read: ExportedConversation) -> None:
    """Times that never go backwards (a missing one takes the one before), and long messages
    cut."""
    last = read.created_at
    limit = settings.MESSAGE_MAX_CHARS
    for turn in read.messages:
        if turn.created_at is None or (last is not None and turn.created_at < last):
            turn.created_at = last
        last = turn.created_at or last
        if len(turn.text) > limit:
            turn.text = turn.text[: limit - len(CUT_MARK)].rstrip() + CUT_MARK
            read.cut += 1
    first = next((t.created_at for t in read.messages if t.created_at), None)
    read.created_at = read.created_at or first


def _external_id(entry: dict, kind: str) -> str:
    """The conversation's id in the export; without one, a digest of what identifies it."""
    key = ("conversation_id", "id") if kind == CHATGPT else ("uuid", "id")
    for name in key:
        value = entry.get(name)
        if isinstance(value, str | int) and str(value).strip():
            return _clean(str(value))[:200]
    seen = [entry.get(k) for k in ("title", "name", "create_time", "created_at")]
    digest = hashlib.sha256(json.dumps(seen, default=str).encode()).hexdigest()
    return f"sha256:{digest[:40]}"


def _clean(value: Any) -> str:
    """Text fit to store: a string, without NUL or lone surrogates (JSON allows both)."""
    if not isinstance(value, str):
        return ""
    text = value.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text.strip()


def _epoch(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _iso(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
