"""The chat turn and conversation lifecycle. Pages, the API and tasks all call these."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.export.jobs import exports_outdate
from accounts.models import AccessEvent, ErasureReceipt
from accounts.receipts import receipt_issue
from accounts.selectors import memory_policy
from accounts.services import lock_user
from chat import prompts
from chat.models import Conversation, Message, Recall
from memories.erasure import lock_messages, teachings_erase
from memories.forgetting import forget_notice, forget_requests
from memories.models import Memory
from memories.retrieval import Context, build_context
from memories.tasks import finalize_conversation as finalize_conversation_task
from memories.tasks import process_message as process_message_task
from memoryweb.ai import llm
from memoryweb.celery import enqueue
from memoryweb.privacy import Erasure
from memoryweb.validators import validate_text

logger = logging.getLogger(__name__)


@dataclass
class TurnResult:
    conversation: Conversation
    user_message: Message
    reply: Message
    context: Context


def conversation_start(*, user, temporary: bool = False) -> Conversation:
    """A new conversation; a temporary one neither reads nor writes memory and is deleted later."""
    now = timezone.now()
    return Conversation.objects.create(
        user=user, temporary=temporary, created_at=now, last_activity_at=now
    )


@dataclass(frozen=True)
class PastMessage:
    """A message of a conversation held elsewhere (another assistant's export), as it was said."""

    role: str  # Message.Role
    text: str
    created_at: datetime
    external_id: str = ""


def conversation_import(
    *,
    user,
    origin: str,
    origin_id: str,
    title: str,
    messages: list[PastMessage],
) -> Conversation | None:
    """Store a past conversation from elsewhere (`origin`, its id there), ended, with the messages'
    own dates; None when `user` has it already. Retention counts from now, the import, not from
    when it was said. The caller learns from it now (`memories.pipeline.conversation_finalize`,
    the worker's path for an ended chat); the sweep does, if the caller stops before."""
    now = timezone.now()
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(
                user=user,
                origin=origin,
                origin_id=origin_id,
                title=title,
                created_at=messages[0].created_at,
                last_activity_at=now,
                ended_at=messages[-1].created_at,
                # queued now: the sweep leaves it to the caller for a while
                finalize_queued_at=now,
            )
    except IntegrityError:  # imported already (maybe just now, by another job)
        return None
    Message.objects.bulk_create(
        Message(
            conversation=conversation,
            role=m.role,
            content=m.text,
            created_at=m.created_at,
            external_id=m.external_id[:100],
            queued_at=now if m.role == Message.Role.USER else None,
        )
        for m in messages
    )
    return conversation


def chat_turn(
    *, user, conversation: Conversation | None, text: str, temporary: bool = False, api_key=None
) -> TurnResult:
    """One turn: store the user's message, retrieve and inject memory, reply, store the reply with
    the memories it used, log the access, and (after commit) queue the message for extraction.

    `conversation` None starts a new one (`temporary` or not); it must belong to `user` and be open
    (callers look it up scoped to the user). What memory may do follows
    `accounts.selectors.memory_policy`. `api_key`: the key of an API call, recorded in the user's
    access log. Raises ValidationError for bad text, an ended conversation, or one deleted
    meanwhile.
    """
    turn = _turn_begin(user=user, conversation=conversation, text=text, temporary=temporary)
    reply = _reply(turn.context, turn.history, turn.text, turn.notice)
    return _turn_finish(turn, reply, api_key)


@dataclass
class StreamedTurn:
    """A turn whose reply is being written: the user's message is stored; iterate `chunks()` for the
    reply's text as it comes, then call `finish()` — also when the reader stops early (it stores
    what was written so far) — which stores the reply once and returns the turn."""

    turn: _Turn
    api_key: object = None
    written: list[str] = field(default_factory=list)
    result: TurnResult | None = None
    finished: bool = False

    @property
    def conversation(self) -> Conversation:
        return self.turn.conversation

    @property
    def user_message(self) -> Message:
        return self.turn.user_message

    def chunks(self) -> Iterator[str]:
        turn = self.turn
        for chunk in _reply_chunks(turn.context, turn.history, turn.text, turn.notice):
            self.written.append(chunk)
            yield chunk

    def finish(self) -> TurnResult:
        """Store the reply (what was written): once; raises ValidationError if the chat was deleted
        meanwhile."""
        if not self.finished:
            self.finished = True
            self.result = _turn_finish(
                self.turn, "".join(self.written).strip() or "…", self.api_key
            )
        if self.result is None:
            raise ValidationError(
                "This conversation was deleted while the reply was being written."
            )
        return self.result


def chat_turn_stream(
    *, user, conversation: Conversation | None, text: str, temporary: bool = False, api_key=None
) -> StreamedTurn:
    """`chat_turn`, with the reply streamed: the model's tokens as they arrive (or the offline
    reply, line by line). The caller stores the reply (with its recalls, the access log, and
    extraction queued) with `finish()` when the stream ends or the reader goes away. Raises as
    `chat_turn`, before any chunk."""
    return StreamedTurn(
        _turn_begin(user=user, conversation=conversation, text=text, temporary=temporary), api_key
    )


@dataclass
class _Turn:
    conversation: Conversation
    user_message: Message
    history: list[Message]
    context: Context
    text: str
    notice: str = ""  # what the app itself adds to the reply (e.g. about a request to forget)


def _turn_begin(*, user, conversation: Conversation | None, text: str, temporary: bool) -> _Turn:
    """Validate, store the user's message (in a new conversation if none), build the context."""
    text = validate_text(text)
    if conversation is not None and not conversation.is_open:
        raise ValidationError("This conversation has ended; start a new one.")
    conversation = conversation or conversation_start(user=user, temporary=temporary)
    history = list(conversation.messages.order_by("-created_at")[: settings.CHAT_HISTORY_MESSAGES])[
        ::-1
    ]
    user_message = Message.objects.create(
        conversation=conversation, role=Message.Role.USER, content=text, created_at=timezone.now()
    )
    policy = memory_policy(user=user, conversation=conversation)
    context = build_context(user, text, exclude_conversation=conversation, policy=policy)
    notice = forget_notice(forget_requests(user=user, text=text))
    return _Turn(conversation, user_message, history, context, text, notice)


def _turn_finish(turn: _Turn, reply_text: str, api_key) -> TurnResult:
    """Store the reply with what it recalled, log the access, queue the user's message for
    extraction."""
    conversation, user = turn.conversation, turn.conversation.user
    with transaction.atomic():
        # The user may have deleted the chat (or forgotten everything) while the reply was written.
        if (
            not Conversation.objects.select_for_update()
            .filter(pk=conversation.pk)
            .values_list("pk")
            .first()
        ):
            raise ValidationError(
                "This conversation was deleted while the reply was being written."
            )
        reply = Message.objects.create(
            conversation=conversation,
            role=Message.Role.ASSISTANT,
            content=reply_text,
            created_at=timezone.now(),
        )
        _record_recall(user, conversation, reply, turn.context, api_key)
        conversation.last_activity_at = reply.created_at
        conversation.title = conversation.title or turn.text[:80]
        # save(): the title is encrypted
        conversation.save(update_fields=["last_activity_at", "title"])
        user_message_id = turn.user_message.pk
        transaction.on_commit(lambda: _enqueue_processing(user_message_id))
    conversation.refresh_from_db()
    return TurnResult(conversation, turn.user_message, reply, turn.context)


def _reply(context: Context, history: list[Message], text: str, notice: str = "") -> str:
    if not llm.is_configured():
        reply = prompts.offline_reply(context)
    else:
        try:
            reply = llm.complete(prompts.compose_messages(context, history, text, notice=notice))
        except llm.LLMError as exc:
            logger.warning("chat reply failed: %s", exc)
            reply = _model_failed(exc)
    return reply + ("\n\n" + notice if notice else "")


def _model_failed(exc: Exception) -> str:
    return (
        "Sorry, the language model could not answer just now ("
        + str(exc)
        + "). Your message is saved."
    )


def _reply_chunks(
    context: Context, history: list[Message], text: str, notice: str = ""
) -> Iterator[str]:
    """The reply in pieces: the model's streamed tokens, or the offline reply line by line; then
    the app's own notice, if any."""
    if not llm.is_configured():
        lines = prompts.offline_reply(context).split("\n")
        yield from (line + "\n" if i < len(lines) - 1 else line for i, line in enumerate(lines))
    else:
        started = False
        try:
            messages = prompts.compose_messages(context, history, text, notice=notice)
            for chunk in llm.stream(messages):
                started = True
                yield chunk
        except llm.LLMError as exc:
            logger.warning("chat reply failed: %s", exc)
            yield ("\n\n" if started else "") + _model_failed(exc)
    if notice:
        yield "\n\n" + notice


def _record_recall(
    user, conversation: Conversation, reply: Message, context: Context, api_key
) -> None:
    Recall.objects.bulk_create(
        Recall(
            message=reply,
            memory_id=item.id if item.type == "memory" else None,
            episode_id=item.id if item.type == "episode" else None,
            rank=rank,
            score=item.score,
        )
        for rank, item in enumerate(context.items, start=1)
    )
    if not context.items:
        return
    if context.memory_ids:
        Memory.objects.filter(pk__in=context.memory_ids).update(
            recall_count=F("recall_count") + 1, last_recalled_at=reply.created_at
        )
    AccessEvent.objects.create(
        user=user,
        actor=AccessEvent.Actor.API if api_key else AccessEvent.Actor.ASSISTANT,
        api_key=api_key,
        purpose="chat reply",
        conversation=conversation,
        items=len(context.items),
    )


def _enqueue_processing(message_id: int) -> None:
    Message.objects.filter(pk=message_id).update(queued_at=timezone.now())
    enqueue(process_message_task, message_id)


def conversation_end(*, conversation: Conversation) -> bool:
    """End an open conversation and queue its finalization (remaining extraction). Idempotent."""
    ended = Conversation.objects.filter(pk=conversation.pk, ended_at__isnull=True).update(
        ended_at=timezone.now()
    )
    conversation.refresh_from_db(fields=["ended_at"])
    if ended:
        transaction.on_commit(lambda: _enqueue_finalize(conversation.pk))
    return bool(ended)


def _enqueue_finalize(conversation_id: int) -> None:
    Conversation.objects.filter(pk=conversation_id).update(finalize_queued_at=timezone.now())
    enqueue(finalize_conversation_task, conversation_id)


def conversation_delete(
    *,
    user,
    conversation: Conversation,
    keep_memories: bool = False,
    inactive_before: datetime | None = None,
    receipt: bool = False,
) -> dict[str, int | str | None]:
    """Delete a conversation of `user` with its messages, its summary and turn episodes — the one
    way a conversation goes. What it taught goes too (`memories.erasure.teachings_erase`), unless
    `keep_memories`: retention keeps the memories (they have their own limit), a temporary chat
    taught nothing. With `inactive_before` (the periodic jobs), only if it has still not been used
    since then, checked under its lock. Waits for a worker still writing from its messages. With
    `receipt` (the user asked for it: the page and the API), a signed erasure receipt is kept.
    Returns what was deleted, and the receipt's id."""
    with transaction.atomic():
        lock_user(user)
        lock_messages(user=user, conversation_ids=[conversation.pk])
        rows = Conversation.objects.for_user(user).select_for_update().defer("title")
        if inactive_before is not None:
            rows = rows.filter(last_activity_at__lt=inactive_before)
        conversation = rows.filter(pk=conversation.pk).first()
        taught = {"memories": 0, "digests": 0}
        if conversation is None:  # deleted meanwhile (another tab, a periodic job), or used again
            return {"messages": 0, **taught, "receipt": None}
        erasure = Erasure()
        if not keep_memories:
            taught = teachings_erase(user=user, conversation=conversation, erasure=erasure)
        erasure.deleted(conversation.delete())
        signed = None
        if receipt:
            kind = ErasureReceipt.Kind.CONVERSATION_DELETED
            signed = receipt_issue(user=user, kind=kind, erasure=erasure)
        user_id = getattr(user, "pk", user)
        transaction.on_commit(lambda: exports_outdate(user_id=user_id))
    return {
        "messages": erasure.counts["messages"],
        **taught,
        "receipt": str(signed.id) if signed else None,
    }
