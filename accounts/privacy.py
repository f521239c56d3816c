"""Forget everything: all memory and chat data of a user, and optionally the account."""

from __future__ import annotations

import logging

from django.db import transaction

from accounts.models import User
from chat.privacy import erase_chat_data
from memories.privacy import erase_memory_data

logger = logging.getLogger(__name__)


def forget_everything(*, user, delete_account: bool) -> None:
    """Erase every conversation, message, memory (with revisions), episode, summary and digest of `user`;
    with `delete_account`, the account too (consents, API keys, access log, settings). The records of
    consent and access stay while the account does: they are the account's own history."""
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).first()  # serialize with digest writers
        erase_chat_data(user=user)
        erase_memory_data(user=user)
        if delete_account:
            user.delete()
    logger.info("user %s: forgot everything (account deleted: %s)", user.pk, delete_account)
