"""Reads about a user's privacy choices. `memory_policy` is the one place that decides what memory
may do for a user in a conversation; the chat turn, the context API, retrieval and the worker all
ask it."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import OuterRef, Subquery
from django.shortcuts import get_object_or_404

from accounts.models import ApiKey, ConsentRecord, DataExport, ErasureReceipt, MemorySettings


@dataclass(frozen=True)
class MemoryPolicy:
    extract: bool  # may learn from this conversation
    inject: bool  # may use saved memories in replies and context
    use_past_chats: bool  # may recall earlier conversations (episodes: turns, summaries, digests)
    sensitive_categories: frozenset[str]  # sensitive categories the user opted in to


NOTHING = MemoryPolicy(
    extract=False, inject=False, use_past_chats=False, sensitive_categories=frozenset()
)


def memory_settings_get(*, user) -> MemorySettings:
    """The user's settings (the private defaults until they change them)."""
    return MemorySettings.objects.filter(user=user).first() or MemorySettings(user=user)


def consents_in_force(*, user) -> dict[str, ConsentRecord]:
    """The newest record per purpose."""
    return {
        record.purpose: record for record in _newest_consents(ConsentRecord.objects.for_user(user))
    }


def _newest_consents(records):
    """The newest of `records` per user and purpose: the consents in force."""
    return records.order_by("user_id", "purpose", "-created_at", "-id").distinct(
        "user_id", "purpose"
    )


def memory_policy(*, user, conversation=None) -> MemoryPolicy:
    """What memory may do now. Nothing in a temporary chat, with memory switched off, or without the
    user's consent to memory; past chats and sensitive categories only when turned on."""
    if _temporary(conversation):
        return NOTHING
    user_id = getattr(user, "pk", user)
    return memory_policies(user_ids=[user_id])[user_id]


def memory_policy_in(conversation, policies: dict[int, MemoryPolicy]) -> MemoryPolicy:
    """`memory_policy` for the conversation, from its user's in `policies` (`memory_policies`)."""
    return NOTHING if _temporary(conversation) else policies[conversation.user_id]


def _temporary(conversation) -> bool:
    return conversation is not None and conversation.temporary


def memory_policies(*, user_ids) -> dict[int, MemoryPolicy]:
    """`memory_policy` of many users (outside a temporary chat) in one query, for the worker's
    batches: the consents in force, each row carrying its user's settings."""
    wanted = list(user_ids)
    chosen = MemorySettings.objects.filter(user=OuterRef("user"))
    defaults = MemorySettings()  # the private defaults, until the user changes them
    rows = (
        _newest_consents(ConsentRecord.objects.filter(user_id__in=wanted))
        .annotate(
            memory_enabled=Subquery(chosen.values("memory_enabled")[:1]),
            use_past_chats=Subquery(chosen.values("use_past_chats")[:1]),
        )
        .values_list("user_id", "purpose", "granted", "memory_enabled", "use_past_chats")
    )
    granted = {user_id: {} for user_id in wanted}
    switches = {user_id: (defaults.memory_enabled, defaults.use_past_chats) for user_id in wanted}
    for user_id, purpose, is_granted, enabled, past_chats in rows:
        granted[user_id][purpose] = is_granted
        if enabled is not None:  # the user has settings of their own
            switches[user_id] = enabled, past_chats
    return {user_id: _policy(granted[user_id], *switches[user_id]) for user_id in wanted}


def _policy(granted: dict[str, bool], memory_enabled: bool, use_past_chats: bool) -> MemoryPolicy:
    if not memory_enabled or not granted.get(ConsentRecord.Purpose.MEMORY):
        return NOTHING  # no consent to memory (no record, or the newest withdraws it)
    return MemoryPolicy(
        extract=True,
        inject=True,
        use_past_chats=use_past_chats,
        sensitive_categories=frozenset(
            purpose.removeprefix(ConsentRecord.SENSITIVE_PREFIX)
            for purpose, is_granted in granted.items()
            if purpose.startswith(ConsentRecord.SENSITIVE_PREFIX) and is_granted
        ),
    )


def exports_list(*, user, limit: int = 20) -> list[DataExport]:
    """The user's newest data exports, for the export page."""
    return list(DataExport.objects.for_user(user)[:limit])


def export_of_user(*, user, token: str) -> DataExport:
    """The user's export with this download token; 404 for anyone else's or an unknown token."""
    return get_object_or_404(DataExport.objects.for_user(user), token=token)


def api_keys_list(*, user):
    """The user's personal API keys, newest first, revoked and expired ones included."""
    return ApiKey.objects.for_user(user).order_by("-created_at", "-id")


def api_key_of_user(*, user, key_id) -> ApiKey:
    """One of the user's keys, or 404 (also for another user's)."""
    return get_object_or_404(ApiKey.objects.for_user(user), pk=key_id)


def receipts_list(*, user):
    """The user's erasure receipts, newest first."""
    return ErasureReceipt.objects.for_user(user)


def receipt_of_user(*, user, receipt_id) -> ErasureReceipt:
    """The user's receipt with this id; 404 for anyone else's or an unknown id."""
    return get_object_or_404(ErasureReceipt.objects.for_user(user), pk=receipt_id)
