"""Exports as ChatGPT and Claude write them, generated for the tests (and the bench): ChatGPT's
`mapping` trees with a null root, a hidden system message, the user's hidden custom instructions,
a tool call, an image part, and a regenerated answer left on a dead branch; Claude's flat
`chat_messages`, some with their text only in `content` blocks."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime, timedelta

START = datetime(2024, 3, 4, 9, 30, tzinfo=UTC)


def chatgpt_conversation(
    conversation_id: str,
    title: str,
    turns: list[tuple[str, str]],
    *,
    start: datetime = START,
    dead_branch: bool = True,
) -> dict:
    """One conversation: `turns` are (role, text) along the kept branch, among odd nodes."""
    mapping: dict[str, dict] = {}
    t0 = start.timestamp()

    def add(node_id, parent, message):
        mapping[node_id] = {"id": node_id, "message": message, "parent": parent, "children": []}
        if parent:
            mapping[parent]["children"].append(node_id)
        return node_id

    def message(role, parts, when, content_type="text", **extra):
        return {
            "id": f"m-{len(mapping)}",
            "author": {"role": role, "name": None, "metadata": {}},
            "create_time": when,
            "update_time": None,
            "content": {"content_type": content_type, "parts": parts},
            "status": "finished_successfully",
            "metadata": extra.pop("metadata", {}),
            "recipient": extra.pop("recipient", "all"),
            **extra,
        }

    node = add(f"{conversation_id}-root", None, None)
    node = add(
        f"{conversation_id}-sys",
        node,
        message("system", [""], None, metadata={"is_visually_hidden_from_conversation": True}),
    )
    node = add(
        f"{conversation_id}-ctx",
        node,
        {
            **message("user", [], t0, content_type="user_editable_context"),
            "metadata": {"is_visually_hidden_from_conversation": True},
        },
    )
    for i, (role, text) in enumerate(turns):
        when = t0 + 60 * (i + 1)
        if role == "assistant" and dead_branch and i == 1:
            add(
                f"{conversation_id}-dead",
                node,
                message("assistant", ["A DEAD BRANCH answer."], when),
            )
        if role == "assistant" and i == 1:
            node = add(
                f"{conversation_id}-tool",
                node,
                message(
                    "assistant", ["search('x')"], when, content_type="code", recipient="browser"
                ),
            )
        parts: list = [text]
        if role == "user" and i == 0:
            parts = [
                {"content_type": "image_asset_pointer", "asset_pointer": "file-service://x"},
                text,
            ]
            content_type = "multimodal_text"
        else:
            content_type = "text"
        node = add(f"{conversation_id}-{i}", node, message(role, parts, when, content_type))
    return {
        "title": title,
        "create_time": t0,
        "update_time": t0 + 60 * (len(turns) + 1),
        "mapping": mapping,
        "moderation_results": [],
        "current_node": node,
        "conversation_id": conversation_id,
        "id": conversation_id,
    }


def claude_conversation(
    uuid: str, name: str, turns: list[tuple[str, str]], *, start: datetime = START
) -> dict:
    messages = []
    for i, (role, text) in enumerate(turns):
        when = (start + timedelta(minutes=i)).isoformat().replace("+00:00", "Z")
        in_blocks = i % 2 == 1  # newer exports: the text in content blocks, "text" empty
        messages.append(
            {
                "uuid": f"{uuid}-{i}",
                "sender": "human" if role == "user" else "assistant",
                "text": "" if in_blocks else text,
                "content": [{"type": "text", "text": text}],
                "created_at": when,
                "updated_at": when,
                "attachments": [],
                "files": [],
            }
        )
    return {
        "uuid": uuid,
        "name": name,
        "created_at": start.isoformat().replace("+00:00", "Z"),
        "updated_at": start.isoformat().replace("+00:00", "Z"),
        "account": {"uuid": "acc-1"},
        "chat_messages": messages,
    }


def as_json(conversations: list) -> bytes:
    return json.dumps(conversations).encode()


def as_zip(body: bytes, *, member: str = "conversations.json") -> bytes:
    """A zip as the assistants send it: conversations.json among other files."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("user.json", '{"id": "user-1"}')
        archive.writestr(member, body)
        archive.writestr("chat.html", "<html></html>")
    return out.getvalue()


def sample_chatgpt() -> list[dict]:
    """Three conversations: two to import, one with nothing said."""
    return [
        chatgpt_conversation(
            "gpt-1",
            "Moving to Lisbon",
            [("user", "I live in Lisbon now."), ("assistant", "Lisbon is lovely.")],
        ),
        chatgpt_conversation(
            "gpt-2",
            "",
            [("user", "I am vegetarian."), ("assistant", "Noted: vegetarian recipes.")],
            start=START + timedelta(days=30),
        ),
        {"title": "Empty", "create_time": None, "mapping": {}, "current_node": None, "id": "gpt-3"},
    ]


def sample_claude() -> list[dict]:
    return [
        claude_conversation(
            "cl-1",
            "Garden plans",
            [("user", "My sister is called Marta."), ("assistant", "Nice to know about Marta.")],
        ),
    ]


WORDS = (
    "garden lisbon cello marathon recipe budget meeting sister holiday python train coffee "
    "novel piano deadline invoice mountain river doctor museum market bicycle painting"
).split()


def write_chatgpt_export(path, *, size: int, turns: int = 20, seed: int = 7) -> int:
    """Write a ChatGPT conversations.json of about `size` bytes to `path`, one conversation at a
    time (the writer never holds it whole); returns how many conversations it holds."""
    import random

    rng = random.Random(seed)
    written = count = 0
    with open(path, "w", encoding="utf-8") as out:
        out.write("[")
        while written < size:
            said = [
                (
                    "user" if i % 2 == 0 else "assistant",
                    " ".join(rng.choice(WORDS) for _ in range(60 if i % 2 else 25)) + ".",
                )
                for i in range(turns)
            ]
            start = START + timedelta(hours=count)
            text = json.dumps(
                chatgpt_conversation(f"gen-{count}", f"Generated {count}", said, start=start)
            )
            out.write(("," if count else "") + text)
            written += len(text) + 1
            count += 1
        out.write("]")
    return count
