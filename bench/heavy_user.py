"""What a context costs for a user with far more history than a LoCoMo conversation, in one run.

    MEMORYWEB_DATA_DIR=$PWD/.data/bench10 .venv/bin/python bench/heavy_user.py [--copies 1 4]

Needs the templates an earlier `manage.py bench_scale --keep` left in that data folder. For each
count in `--copies` it makes a throwaway user holding that many copies of every template's chats
(five dev conversations: 2,960 turns a copy; cloned as `bench_scale` seeds, deleted at the end),
then asks the same questions of a seeded LoCoMo-sized user and of each heavy user in turns: p50 /
p95 of `build_context` and of the turns' search alone, against the query embedding's p50 and the
LoCoMo-sized user's. Numbers are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import random
import time
import uuid

import kept_users


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--questions", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=2, help="Each question asked this often.")
    kept_users.main(parser, run, positive=("copies", "questions", "rounds"))


def run(args) -> None:
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.test.utils import override_settings

    from memories.evaluation import scale
    from memories.evaluation.run import scored_questions
    from memories.models import Episode

    samples, templates, seeded = kept_users.kept(args, 1)
    # Only the chats: the memories of five conversations would collide in one user's profile.
    history = tuple(m for m in scale.CLONED_MODELS if m._meta.app_label == "chat" or m is Episode)
    made = []
    try:
        users = {"LoCoMo-sized": seeded[0].user}
        for copies in args.copies:
            with transaction.atomic():
                user = get_user_model().objects.create_user(
                    f"bench-heavy-{uuid.uuid4().hex[:8]}", password=None
                )
                made.append(user.pk)
                # the first template whole (settings, consent, memories), then only chats
                scale.clone_into(templates[0], user)
                for template in (templates * copies)[1:]:
                    scale.clone_into(template, user, history)
            users[f"{copies} cop{'y' if copies == 1 else 'ies'}"] = user
        scale.tables_analyze()
        questions = [q.text for s in samples for q in scored_questions(s) if q.text]
        mix = random.Random(9).sample(questions, min(args.questions, len(questions)))
        with override_settings(OPENAI_API_KEY="", EMBEDDING_BACKEND="local"):
            report(users, mix, args.rounds)
    finally:
        scale.users_delete(made)


def report(users: dict, mix: list[str], rounds: int) -> None:
    from accounts.selectors import memory_policy
    from memories import lexical
    from memories.evaluation.scoring import percentile
    from memories.models import Episode
    from memories.retrieval import TURN_CANDIDATES, build_context, embedded_query
    from memoryweb.ai import embeddings

    builds = {name: [] for name in users}
    searches = {name: [] for name in users}
    for question in mix[:10]:  # warm: the model, the plans, the pages
        for user in users.values():
            build_context(user, question)
    for _ in range(rounds):
        for i, question in enumerate(mix):
            order = list(users.items())
            for name, user in order if i % 2 else order[::-1]:
                embeddings._embed_query_cached.cache_clear()
                started = time.perf_counter()
                build_context(user, question)
                builds[name].append((time.perf_counter() - started) * 1000)
                named, meant = embedded_query(user, question, memory_policy(user=user))
                vector = embeddings.embed_query(meant)  # as the build embeds it
                started = time.perf_counter()
                lexical.search_turns(user.pk, question, TURN_CANDIDATES, vector=vector, named=named)
                searches[name].append((time.perf_counter() - started) * 1000)
    embedded = []
    for question in mix:
        started = time.perf_counter()
        embeddings.embed_texts([question])
        embedded.append((time.perf_counter() - started) * 1000)
    embed = percentile(embedded, 50)
    base = percentile(builds["LoCoMo-sized"], 50)
    print(f"query embedding alone p50 {embed:.1f} ms ({len(mix)} questions, {rounds} rounds)")
    print(
        f"{'user':14} {'turns':>6} {'build p50':>10} {'p95':>7} {'/embed':>7} {'/LoCoMo':>8} "
        f"{'search p50':>11} {'p95':>7}"
    )
    for name, user in users.items():
        turns = Episode.objects.filter(user=user, kind=Episode.Kind.TURN).count()
        build = [percentile(builds[name], q) for q in (50, 95)]
        search = [percentile(searches[name], q) for q in (50, 95)]
        print(
            f"{name:14} {turns:6} {build[0]:10.1f} {build[1]:7.1f} {build[0] / embed:7.2f} "
            f"{build[0] / base:8.2f} {search[0]:11.1f} {search[1]:7.1f}"
        )


if __name__ == "__main__":
    main()
