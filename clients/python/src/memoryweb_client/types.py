"""The API's response bodies, as the server sends them (JSON objects; times are ISO 8601 strings).
Field names and meanings: docs/api.md and the OpenAPI schema at /api/schema/."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypedDict, TypeVar

T = TypeVar("T")


class Page(TypedDict, Generic[T]):
    """One page of a list: `next` / `previous` are URLs, or None at the ends."""

    count: int
    next: str | None
    previous: str | None
    results: list[T]


class ContextItem(TypedDict):
    id: int
    type: Literal["memory", "episode"]
    kind: str
    text: str
    score: float
    when: str
    sources: list[int]
    origin: str


class ChatReply(TypedDict):
    conversation: int
    message: int
    reply: str
    reply_message: int
    recalled: list[ContextItem]


class ChatEvent(TypedDict):
    """One server-sent event of a streamed reply: "start", "delta" ({text}), "done" (a ChatReply)
    or "error"."""

    event: str
    data: dict[str, Any]


class Conversation(TypedDict):
    id: int
    title: str
    temporary: bool
    created_at: str
    last_activity_at: str
    ended_at: str | None


class Recall(TypedDict):
    memory: int | None
    episode: int | None
    rank: int
    score: float


class Message(TypedDict):
    id: int
    role: Literal["user", "assistant"]
    content: str
    created_at: str
    recalled: list[Recall]


class ConversationDetail(Conversation):
    messages: list[Message]


class ConversationEnded(TypedDict):
    conversation: int
    ended_at: str


class ConversationDeleted(TypedDict):
    messages: int
    memories: int
    digests: int
    receipt: str | None


class Memory(TypedDict):
    id: int
    kind: str
    subject: str
    text: str
    confidence: float
    source: str
    app: str | None
    pinned: bool
    use_in_context: bool
    review_status: str
    valid_from: str
    created_at: str
    last_recalled_at: str | None
    sources: list[int]


class Revision(TypedDict):
    id: int
    action: str
    actor: str
    old_text: str
    new_text: str
    message: int | None
    created_at: str


class MemoryDetail(Memory):
    valid_until: str | None
    history: list[Revision]


class Remembered(TypedDict):
    decision: str
    memory: Memory


class Pushed(TypedDict):
    """`decision`: add, reinforce, update, supersede; to an app also held or accepted (then
    `memory` is None)."""

    decision: str
    memory: Memory | None


class Reported(TypedDict):
    memory: int
    review_status: str
    reported: bool


class Context(TypedDict):
    context: str
    tokens: int
    items: list[ContextItem]


class Settings(TypedDict):
    memory_enabled: bool
    use_past_chats: bool
    temporary_chat_hours: int
    time_zone: str
    updated_at: str | None


class Consent(TypedDict):
    purpose: str
    label: str
    granted: bool
    since: str | None
    method: str | None
    policy_version: str | None


class Export(TypedDict):
    id: int
    status: Literal["pending", "running", "ready", "failed", "expired"]
    progress: int
    error: str
    created_at: str
    finished_at: str | None
    expires_at: str | None


class AccessEvent(TypedDict):
    id: int
    actor: str
    purpose: str
    conversation: int | None
    api_key: int | None
    app: str | None
    items: int
    created_at: str


class SignedReceipt(TypedDict):
    """An erasure receipt as signed: `receipt` (what was erased, counted per kind; when; the data
    key) and its Ed25519 `signature` (base64) over the receipt's canonical JSON."""

    receipt: dict[str, Any]
    signature: str


class Forgotten(TypedDict):
    forgotten: bool
    account_deleted: bool
    receipt_id: str
    receipt: SignedReceipt


class Receipt(TypedDict):
    id: str
    kind: Literal["forget_everything", "conversation_deleted"]
    created_at: str
    erased: dict[str, int]


class ReceiptKey(TypedDict):
    id: str
    algorithm: str
    current: bool
    public_key: str
    pem: str
