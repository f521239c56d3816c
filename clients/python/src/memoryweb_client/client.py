"""A small client for memoryweb's REST API (/api/v1/), on the standard library alone (urllib), so
that it installs anywhere without pulling in an HTTP stack."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from memoryweb_client.types import (
    AccessEvent,
    ChatEvent,
    ChatReply,
    Consent,
    Context,
    ContextItem,
    Conversation,
    ConversationDeleted,
    ConversationDetail,
    ConversationEnded,
    Export,
    Forgotten,
    Memory,
    MemoryDetail,
    Page,
    Pushed,
    Receipt,
    ReceiptKey,
    Remembered,
    Reported,
    Revision,
    Settings,
)

FORGET_PHRASE = "forget everything"


class MemorywebError(Exception):
    """Anything that kept a call from getting its answer."""


class TransportError(MemorywebError):
    """The server could not be reached, or did not answer within the timeout."""


class ApiError(MemorywebError):
    """The API answered with an error: its HTTP `status`, and the error body's `code`, `message`
    and `fields` (for invalid input: the message of each field). `body` is the whole answer."""

    def __init__(self, status: int, body: Any):
        error = body.get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}
        self.status = status
        self.body = body
        self.code: str = error.get("code", "error")
        self.message: str = error.get("message", "") or f"HTTP {status}"
        self.fields: dict[str, Any] = error.get("fields") or {}
        super().__init__(f"{status} {self.code}: {self.message}")


class Client:
    """The API as one user (a personal API key), or as a registered app acting for a user who
    granted it access (its secret and `user`). Every call raises ApiError or TransportError rather
    than returning an error."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        user: str | None = None,
        timeout: float = 30.0,
    ):
        self.site_url = base_url.rstrip("/") + "/"  # the server's root
        self.base_url = self.site_url + "api/v1/"
        self.timeout = timeout
        self._headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        if user is not None:
            self._headers["X-Memoryweb-User"] = user

    # --- chat -------------------------------------------------------------------------------

    def chat(
        self, message: str, *, conversation: int | None = None, temporary: bool = False
    ) -> ChatReply:
        """Send a message and get the reply: to `conversation`, or to a new one (temporary: it
        neither reads nor writes memory)."""
        body = {"message": message, "conversation": conversation, "temporary": temporary}
        return cast(ChatReply, self._json("POST", "chat", body))

    def chat_stream(
        self, message: str, *, conversation: int | None = None, temporary: bool = False
    ) -> Iterator[ChatEvent]:
        """The reply as it is written: "start", then "delta" events ({"text"}), then "done" (the
        same object `chat` returns), or "error" if the chat was deleted meanwhile."""
        body = {
            "message": message,
            "conversation": conversation,
            "temporary": temporary,
            "stream": True,
        }
        with self._open("POST", "chat", body) as response:
            try:
                yield from _server_sent_events(response)
            except (TimeoutError, ConnectionError, http.client.HTTPException) as error:
                raise TransportError(f"POST chat (stream): {error or 'timed out'}") from None

    def conversations(self, **paging: int) -> Page[Conversation]:
        return cast(Page[Conversation], self._json("GET", "conversations", query=paging))

    def conversation(self, conversation_id: int) -> ConversationDetail:
        return cast(ConversationDetail, self._json("GET", f"conversations/{conversation_id}"))

    def conversation_end(self, conversation_id: int) -> ConversationEnded:
        """End it: what was said is then summarized and remembered."""
        path = f"conversations/{conversation_id}/end"
        return cast(ConversationEnded, self._json("POST", path))

    def conversation_delete(self, conversation_id: int) -> ConversationDeleted:
        """Delete it with what was learned only from it; `receipt` is its erasure receipt's id."""
        path = f"conversations/{conversation_id}"
        return cast(ConversationDeleted, self._json("DELETE", path))

    # --- context: what apps pull and push ---------------------------------------------------

    def context(self, query: str, *, budget_tokens: int | None = None) -> Context:
        """Pull: what the chat would inject for `query`, as text and as items."""
        body: dict[str, Any] = {"query": query}
        if budget_tokens is not None:
            body["budget_tokens"] = budget_tokens
        return cast(Context, self._json("POST", "context", body))

    def push(self, text: str, *, kind: str = "fact", confidence: float | None = None) -> Pushed:
        """Push: a fact or observation about the user ("User plays chess on Sundays")."""
        body: dict[str, Any] = {"text": text, "kind": kind}
        if confidence is not None:
            body["confidence"] = confidence
        return cast(Pushed, self._json("POST", "context/push", body))

    def profile(self, **paging: int) -> Page[Memory]:
        """The always-on profile every reply's context starts from."""
        return cast(Page[Memory], self._json("GET", "context/profile", query=paging))

    # --- memories ---------------------------------------------------------------------------

    def memories(
        self,
        *,
        kind: str | None = None,
        source: str | None = None,
        since: str | None = None,
        until: str | None = None,
        **paging: int,
    ) -> Page[Memory]:
        """Current memories, newest first; `since` / `until`: the day learned, YYYY-MM-DD."""
        query = {"kind": kind, "source": source, "since": since, "until": until, **paging}
        return cast(Page[Memory], self._json("GET", "memories", query=query))

    def search(self, q: str, **paging: int) -> Page[ContextItem]:
        """Memories and past conversations by the chat's own retrieval, best first."""
        return cast(
            Page[ContextItem], self._json("GET", "memories/search", query={"q": q, **paging})
        )

    def memory(self, memory_id: int) -> MemoryDetail:
        return cast(MemoryDetail, self._json("GET", f"memories/{memory_id}"))

    def remember(self, text: str, *, kind: str = "fact") -> Remembered:
        """ "Remember this", as the user says it."""
        return cast(Remembered, self._json("POST", "memories", {"kind": kind, "text": text}))

    def correct(self, memory_id: int, text: str) -> MemoryDetail:
        """Correct a memory's text (its history keeps the old one)."""
        return cast(MemoryDetail, self._json("PATCH", f"memories/{memory_id}", {"text": text}))

    def set_use(self, memory_id: int, use_in_context: bool) -> MemoryDetail:
        """False: "don't use this" (kept, never injected)."""
        body = {"use_in_context": use_in_context}
        return cast(MemoryDetail, self._json("PATCH", f"memories/{memory_id}", body))

    def memory_delete(self, memory_id: int) -> None:
        """Delete a memory with its history."""
        self._json("DELETE", f"memories/{memory_id}")

    def memory_history(self, memory_id: int, **paging: int) -> Page[Revision]:
        path = f"memories/{memory_id}/history"
        return cast(Page[Revision], self._json("GET", path, query=paging))

    def report(self, memory_id: int, reason: str = "other") -> Reported:
        """Hold a memory for review: wrong, not-mine, instruction or other."""
        path = f"memories/{memory_id}/report"
        return cast(Reported, self._json("POST", path, {"reason": reason}))

    # --- privacy ----------------------------------------------------------------------------

    def settings(self) -> Settings:
        return cast(Settings, self._json("GET", "me/settings"))

    def settings_update(self, **changes: Any) -> Settings:
        """memory_enabled, use_past_chats, temporary_chat_hours, time_zone."""
        return cast(Settings, self._json("PATCH", "me/settings", changes))

    def consents(self, **paging: int) -> Page[Consent]:
        return cast(Page[Consent], self._json("GET", "me/consents", query=paging))

    def consent_set(self, purpose: str, granted: bool) -> Consent:
        """Grant or withdraw one purpose ("memory", "sensitive:health", …), in force at once."""
        body = {"purpose": purpose, "granted": granted}
        return cast(Consent, self._json("POST", "me/consents", body))

    def exports(self, **paging: int) -> Page[Export]:
        return cast(Page[Export], self._json("GET", "me/exports", query=paging))

    def export_start(self) -> Export:
        """Prepare an export of everything kept about the user (or the one being prepared)."""
        return cast(Export, self._json("POST", "me/exports"))

    def export(self, export_id: int) -> Export:
        return cast(Export, self._json("GET", f"me/exports/{export_id}"))

    def export_wait(self, export_id: int, *, timeout: float = 120.0, every: float = 1.0) -> Export:
        """Poll until the export is ready (or failed); TransportError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while (export := self.export(export_id))["status"] in ("pending", "running"):
            if time.monotonic() > deadline:
                raise TransportError(f"export {export_id} not ready after {timeout} s")
            time.sleep(every)
        return export

    def export_download(self, export_id: int, to: str | Path | None = None) -> bytes:
        """The export's zip (export.json + export.md); written to `to` as well when given."""
        archive = self._bytes("GET", f"me/exports/{export_id}/download")
        if to is not None:
            Path(to).write_bytes(archive)
        return archive

    def access_log(self, **paging: int) -> Page[AccessEvent]:
        return cast(Page[AccessEvent], self._json("GET", "me/access-log", query=paging))

    def forget_everything(self, *, delete_account: bool = False) -> Forgotten:
        """Erase every conversation, memory and export (with `delete_account`, the account too).
        The answer holds the signed erasure receipt: after an account deletion, the only copy."""
        body = {"confirmation": FORGET_PHRASE, "delete_account": delete_account}
        return cast(Forgotten, self._json("POST", "me/forget", body))

    def receipts(self, **paging: int) -> Page[Receipt]:
        return cast(Page[Receipt], self._json("GET", "me/receipts", query=paging))

    def receipt(self, receipt_id: str) -> bytes:
        """A signed erasure receipt, byte for byte as signed: save it, verify it with
        `manage.py verify_receipt FILE --public-key PEM`."""
        return self._bytes("GET", f"me/receipts/{receipt_id}")

    def receipt_keys(self) -> list[ReceiptKey]:
        """The server's public keys for receipts, the current one first (needs no key)."""
        keys = self._json("GET", "/.well-known/memoryweb-receipt-keys")["keys"]
        return cast(list[ReceiptKey], keys)

    # --- HTTP -------------------------------------------------------------------------------

    def _json(self, method: str, path: str, body: Any = None, *, query: dict | None = None) -> Any:
        raw = self._bytes(method, path, body, query=query)
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            raise MemorywebError(
                f"{method} {path}: the answer is not JSON (not the API?)"
            ) from None

    def _bytes(
        self, method: str, path: str, body: Any = None, *, query: dict | None = None
    ) -> bytes:
        with self._open(method, path, body, query=query) as response:
            try:
                return response.read()
            except (TimeoutError, ConnectionError, http.client.HTTPException) as error:
                raise TransportError(f"{method} {path}: {error or 'timed out'}") from None

    def _open(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: dict | None = None,
    ):
        # an API path, or one of the site's (from "/")
        url = self.site_url + path[1:] if path.startswith("/") else self.base_url + path
        if query := {k: v for k, v in (query or {}).items() if v is not None}:
            url += "?" + urllib.parse.urlencode(query)
        headers = dict(self._headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as error:
            with error:
                raise ApiError(error.code, _error_body(error.read())) from None
        except (
            urllib.error.URLError,
            TimeoutError,
            ConnectionError,
            http.client.HTTPException,
        ) as error:
            reason = getattr(error, "reason", error)
            raise TransportError(f"{method} {url}: {reason}") from None


def _error_body(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return {"error": {"code": "error", "message": raw.decode(errors="replace")[:500]}}


def _server_sent_events(response) -> Iterator[ChatEvent]:
    event, data = "message", []
    for raw in response:
        line = raw.decode().rstrip("\r\n")
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line and data:
            yield ChatEvent(event=event, data=json.loads("\n".join(data)))
            event, data = "message", []
