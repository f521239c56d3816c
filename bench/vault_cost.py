"""What binding tokens to their row and binding parameters on the server cost, old vs new in one run.

    MEMORYWEB_DATA_DIR=$PWD/.data/bench .venv/bin/python bench/vault_cost.py [--runs 7]

It makes a throwaway user (deleted at the end) in the database the settings give, and prints the
median of `--runs` runs of each measure: encrypting and decrypting one token (enc1, bound to its
key only, against enc2, bound to its row), reading 200 messages (the plain column and enc1
decryption, against the bound select), saving a message, and a context build with client-side
against server-side parameter binding. Numbers are in docs/benchmarks.md."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memoryweb.settings")

from memoryweb import bootstrap  # noqa: E402

TEXT = "Remember that my sister Ana moves to Lisbon in May and starts at the hospital there."


def median_seconds(fn, runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def paired(old, new, runs: int) -> tuple[float, float]:
    """Medians of old and new, run in turns so that a change of load hits both alike."""
    olds, news = [], []
    for _ in range(runs):
        olds.append(median_seconds(old, 1))
        news.append(median_seconds(new, 1))
    return statistics.median(olds), statistics.median(news)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--tokens", type=int, default=5000)
    args = parser.parse_args()

    bootstrap.prepare()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    try:
        run(args.runs, args.tokens)
    finally:
        bootstrap.finish()


def run(runs: int, tokens: int) -> None:
    from django.db import connection
    from django.db.models import TextField
    from django.db.models.functions import Cast
    from django.utils import timezone

    from accounts.models import ConsentRecord, User
    from accounts.services import consent_set, memory_settings_update
    from chat.models import Conversation, Message
    from memories.models import Episode, Memory
    from memories.retrieval import build_context
    from memoryweb.ai.embeddings import embed_texts
    from vault import keys

    user = User.objects.create_user(f"bench-vault-{uuid.uuid4().hex[:8]}", password=None)
    try:
        consent_set(user=user, purpose=ConsentRecord.Purpose.MEMORY, granted=True, method="bench")
        memory_settings_update(user=user, use_past_chats=True)
        now = timezone.now()
        place = keys.Binding(user.pk, "chat_message", "content", 1)
        keys.encrypt(place, TEXT)  # make the user's data key
        rows = []
        print(f"{'measure':44} {'old':>11} {'new':>11} {'new/old':>8}")

        def line(name, old, new, unit="µs", scale=1e6):
            rows.append((name, old, new))
            ratio = f"{new / old:8.2f}" if old else ""
            old_s = f"{old * scale:9.1f}{unit}" if old else " " * 11
            print(f"{name:44} {old_s} {new * scale:9.1f}{unit} {ratio}")

        enc1, enc2 = paired(
            lambda: [keys.encrypt_unbound(user.pk, TEXT) for _ in range(tokens // 10)],
            lambda: [keys.encrypt(place, TEXT) for _ in range(tokens // 10)],
            runs,
        )
        line(
            "encrypt one token (with its key lookup)", enc1 / (tokens // 10), enc2 / (tokens // 10)
        )
        old_token, new_token = keys.encrypt_unbound(user.pk, TEXT), keys.encrypt(place, TEXT)
        dec1 = median_seconds(
            lambda: [keys.decrypt_unbound(old_token) for _ in range(tokens)], runs
        )
        dec2 = median_seconds(lambda: [keys.decrypt(place, new_token) for _ in range(tokens)], runs)
        line("decrypt one token", dec1 / tokens, dec2 / tokens)

        conversations = [
            Conversation.objects.create(
                user=user, title=f"Chat {i}", created_at=now, last_activity_at=now
            )
            for i in range(10)
        ]
        texts = [f"{TEXT} ({i})" for i in range(200)]
        vectors = embed_texts(texts)

        def save_messages():
            return [
                Message.objects.create(
                    conversation=conversations[i % 10], role="user", content=t, created_at=now
                )
                for i, t in enumerate(texts[:50])
            ]

        saved = median_seconds(save_messages, runs) / 50
        line("save one message (id drawn, then INSERT)", 0, saved, "ms", 1e3)
        draw = Message._meta.pk.get_pk_value_on_save
        drawn = median_seconds(lambda: [draw(Message()) for _ in range(200)], runs) / 200
        line("of which drawing its id (nextval)", 0, drawn, "ms", 1e3)
        messages = Message.objects.filter(conversation__user=user)
        old_tokens = [keys.encrypt_unbound(user.pk, t) for t in texts]

        def read_old():
            list(messages.annotate(c=Cast("content", TextField())).values_list("c")[:200])
            return [keys.decrypt_unbound(t) for t in old_tokens]

        def read_new():
            return list(messages.values_list("content", flat=True)[:200])

        line("read 200 messages", *paired(read_old, read_new, runs), "ms", 1e3)

        for i, (text, vector) in enumerate(zip(texts, vectors, strict=True)):
            conversation = conversations[i % 10]
            Episode.objects.create(
                user=user,
                conversation=conversation,
                kind="turn",
                key=f"turn:bench:{i}",
                text=f"User: {text}",
                search=None,
                started_at=now,
                ended_at=now,
                embedding=vector,
            )
            if i % 4 == 0:
                Memory.objects.create(
                    user=user,
                    kind="fact",
                    subject=f"bench:{i}",
                    text=f"User's sister fact {i}: {text}",
                    fingerprint=uuid.uuid4().hex,
                    valid_from=now,
                    embedding=vector,
                )
        query = "Where does my sister move in May?"
        build_context(user, query)  # warm the BM25 index and the model

        def context_with(server_side: bool):
            def build():
                build_context(user, query)

            def measure() -> None:
                connection.close()
                connection.settings_dict["OPTIONS"]["server_side_binding"] = server_side
                connection.ensure_connection()
                build()  # a new connection's first statements: not what is measured
                samples.append(median_seconds(build, 3))

            samples: list[float] = []
            return measure, samples

        client, client_samples = context_with(False)
        server, server_samples = context_with(True)
        for _ in range(runs):
            client()
            server()
        line(
            "build_context (client- vs server-side binding)",
            statistics.median(client_samples),
            statistics.median(server_samples),
            "ms",
            1e3,
        )
    finally:
        user.delete()


if __name__ == "__main__":
    main()
