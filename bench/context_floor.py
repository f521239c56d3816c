"""What a context costs beyond its query embedding, part by part (issue 12, goal 2).

For questions of the users a `manage.py bench_scale --users 10 --keep` run left, in one run and in
turns: the query embedding alone (of the text the build embeds), `build_context`, and each SQL
statement the build ran, run again alone with its own parameters (PostgreSQL's time and the round
trip) and, for those that take the query's vector, with it NULL (the part that needs no vector),
in alternating order. What is left is Python. The last lines are bounds: the build with no Python
at all; that, with the vector-free part of the statements that take a vector run while the query
embeds (the policy and the speakers come before the embedding, which depends on them); and the
whole build's work spread evenly over the machine's cores with nothing waiting (a build runs its
parts one after another, the embedding on one thread, so its time is its work):

    MEMORYWEB_DATA_DIR=$PWD/.data/bench10 .venv/bin/python bench/context_floor.py --questions 200
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import time

import kept_users

FROM_TABLE = re.compile(r'\bFROM\s+"?(\w+)"?')


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=200)
    kept_users.main(parser, run, positive=("questions",))


def run(args) -> None:
    from django.db import connection
    from django.test.utils import override_settings

    from accounts.selectors import memory_policy
    from memories.evaluation import scale
    from memories.evaluation.scoring import percentile
    from memories.retrieval import build_context, embedded_query
    from memoryweb.ai import embeddings

    _, _, seeded = kept_users.kept(args, 10)
    mix = scale.questions_mix(seeded, args.questions, random.Random(7))
    if not mix:
        sys.exit("The kept users have no questions to ask.")

    def timed(step, *args) -> float:
        embeddings._embed_query_cached.cache_clear()
        started = time.perf_counter()
        step(*args)
        return (time.perf_counter() - started) * 1000

    def again(sql, params) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            cursor.fetchall()

    embed_ms, build_ms, parts = [], [], {}
    with override_settings(OPENAI_API_KEY="", EMBEDDING_BACKEND="local"):
        for asked in mix[:10]:  # warm: the model, the prepared statements, the pages
            build_context(asked.seeded.user, asked.question)
        for i, asked in enumerate(mix):
            user, question = asked.seeded.user, asked.question
            _, meant = embedded_query(user, question, memory_policy(user=user))
            embed_ms.append(timed(embeddings.embed_query, meant))  # what the build embeds
            build_ms.append(timed(build_context, user, question))
            for number, statement in enumerate(scale.context_statements(asked, None)):
                tables = ", ".join(dict.fromkeys(FROM_TABLE.findall(statement.sql))) or "?"
                part = parts.setdefault(f"{number + 1}. {tables}"[:60], ([], []))
                runs = [(part[0], statement.params)]
                if has_vector(statement.params):
                    runs.append((part[1], without_vector(statement.params)))
                for times, params in runs if i % 2 else runs[::-1]:  # neither always first
                    times.append(timed(again, statement.sql, params))

    embed, build = percentile(embed_ms, 50), percentile(build_ms, 50)
    print(f"{len(mix)} questions of {len({a.seeded.user.pk for a in mix})} users, p50s:")
    print(f"  query embedding alone   {embed:6.2f} ms")
    print(f"  build_context           {build:6.2f} ms   {build / embed:.2f} x the embedding")
    sql = needs_vector = 0.0
    print(f"  {'statement, run again alone':60} {'as run':>9} {'no vector':>10}")
    for label, (times, without) in parts.items():
        part = percentile(times, 50)
        sql += part
        if without:
            free = percentile(without, 50)
            needs_vector += max(part - free, 0)
            print(f"  {label:60} {part:6.2f} ms {free:7.2f} ms")
        else:  # the policy, the speakers: before the embedding, which depends on them
            needs_vector += part
            print(f"  {label:60} {part:6.2f} ms {'-':>10}")
    print(f"  the statements together {sql:6.2f} ms")
    print(f"  the rest (Python)       {build - embed - sql:6.2f} ms")
    print(f"  with no Python at all   {embed + sql:6.2f} ms   {(embed + sql) / embed:.2f} x")
    hidden = embed + needs_vector
    print(
        "  and the vector-free part of the later statements run while the query embeds "
        f"{hidden:6.2f} ms   {hidden / embed:.2f} x"
    )
    # a build runs its parts one after another (the embedding on one thread): its time is its work
    cores = os.cpu_count() or 1
    spread = build / cores
    print(
        f"  all of it spread on {cores} cores, no waits  {spread:6.2f} ms   {spread / embed:.2f} x"
    )


def has_vector(params) -> bool:
    return any(
        _vector(value) for value in (params.values() if isinstance(params, dict) else params)
    )


def _vector(value) -> bool:
    """A pgvector literal: "[0.1,...]"."""
    return isinstance(value, str) and value.startswith("[") and value.count(",") > 8


def without_vector(params):
    """The statement's parameters with the query's vector bound NULL: the statement as it runs when
    the query cannot be embedded, i.e. what needs no vector."""
    if isinstance(params, dict):
        return {key: None if _vector(value) else value for key, value in params.items()}
    return tuple(None if _vector(value) else value for value in params)


if __name__ == "__main__":
    main()
