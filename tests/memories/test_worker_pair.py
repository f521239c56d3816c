"""Two real Celery worker processes on one queue (Redis db 15): every user message the chat queues
is learned exactly once, by one worker or the other, and each conversation's in the order said.
Skipped when no Redis answers at 127.0.0.1:6379 (see test_worker.py, whose helpers it shares)."""

from __future__ import annotations

import os
import re
import socket
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from chat.models import Conversation, Message
from memories import tasks
from memoryweb.celery import enqueue
from tests.factories import memories_saying
from tests.memories.test_worker import (
    FIRST_TASK_TIMEOUT,
    Worker,
    _app_using_broker,
    redis_broker,  # noqa: F401 - a fixture
    worker_environment,
)

PROCESSED = re.compile(r"processed message (\d+):")
BATCH_SIZE = 4  # small batches, so that the two workers meet often


@pytest.fixture
def two_workers(request, _offline_and_eager, settings, transactional_db, redis_broker):  # noqa: F811
    settings.CELERY_TASK_ALWAYS_EAGER = False
    env = worker_environment(settings, redis_broker, MEMORY_BATCH_SIZE=str(BATCH_SIZE))
    with _app_using_broker(redis_broker):
        host = socket.gethostname()
        workers = [Worker(f"memoryweb-pair-{i}-{os.getpid()}@{host}", env) for i in (1, 2)]
        failed_before = request.session.testsfailed
        try:
            for worker in workers:
                worker.wait_ready()
            yield workers
        finally:
            for worker in workers:
                worker.stop()
            if request.session.testsfailed > failed_before:
                for worker in workers:
                    print(f"\n--- {worker.hostname} ---\n{worker.output}\n--- end ---")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_two_workers_learn_each_queued_message_once_and_in_order(alice, bob, two_workers):
    conversations = [
        Conversation.objects.create(user=user, created_at=now, last_activity_at=now)
        for user in (alice, alice, bob, bob)
        for now in [timezone.now()]
    ]
    start = timezone.now()
    turns = [
        (c, f"Just thinking about the day, round {i}.") for i in range(8) for c in conversations
    ]
    turns += [
        (c, f"{fact}.")
        for c, fact in zip(conversations, ["I live in Porto", "I work at Initech"] * 2, strict=True)
    ]
    said = [
        Message.objects.create(
            conversation=conversation,
            role=Message.Role.USER,
            content=text,
            created_at=start + timedelta(milliseconds=i),
        )
        for i, (conversation, text) in enumerate(turns)
    ]
    for message in said:  # as the chat turn queues them
        Message.objects.filter(pk=message.pk).update(queued_at=timezone.now())
        enqueue(tasks.process_message, message.pk)

    def all_processed() -> bool:
        return not Message.objects.filter(pk__in=[m.pk for m in said], processed_at=None).exists()

    two_workers[0].wait_until(all_processed, timeout=FIRST_TASK_TIMEOUT * 2, what="every message")

    by_worker = [
        Counter(int(m.group(1)) for line in w.lines if (m := PROCESSED.search(line)))
        for w in two_workers
    ]
    assert by_worker[0] + by_worker[1] == Counter(m.pk for m in said)  # each exactly once
    assert all(by_worker), f"one worker did everything: {[sum(c.values()) for c in by_worker]}"
    for conversation in conversations:
        times = list(conversation.messages.values_list("processed_at", flat=True))
        assert times == sorted(times)  # in the order said (the default ordering: created_at)
    for user in (alice, bob):
        for text in ("User lives in Porto", "User works at Initech"):
            [memory] = memories_saying(text, user=user)
            assert memory.revisions.count() == 1
