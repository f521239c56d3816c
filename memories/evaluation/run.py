"""One benchmark run: ingest each conversation, ask its questions of `build_context` and of the
baselines, then summarise recall@k, context latency and size, and ingestion speed."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from django.utils import timezone

from memories.evaluation.baselines import TurnIndex, embed_all
from memories.evaluation.ingest import IngestedSample, delete_users, ingest_sample, kept_sample
from memories.evaluation.locomo import SCORED_CATEGORIES, Question, Sample
from memories.evaluation.scoring import QuestionResult, first_appearance, percentile, summarise
from memories.retrieval import build_context
from memoryweb.ai import embeddings

SYSTEM = "memoryweb"


@dataclass
class Options:
    ks: Sequence[int] = (5, 10, 20)
    budget_tokens: int = 4000
    baselines: Sequence[str] = ()
    keep_users: bool = False
    reuse_users: bool = (
        False  # ask the users a --keep-users run left instead of ingesting again (kept too)
    )
    asked_at: str = (
        "end"  # "end": questions asked as of the conversation's last turn; "now": the clock
    )


@dataclass
class Measurements:
    results: list[QuestionResult] = field(default_factory=list)
    context_ms: list[float] = field(default_factory=list)
    context_tokens: list[int] = field(default_factory=list)
    context_sources: list[int] = field(default_factory=list)
    ingest_seconds: float = 0.0
    turns: int = 0
    ingested_turns: int = 0  # the turns ingested (timed) in this run: not those of reused users
    reused_users: int = 0
    turns_without_episode: int = 0
    invalid_evidence_ids: int = 0
    questions_without_evidence: int = 0


def scored_questions(sample: Sample) -> list[Question]:
    return [q for q in sample.questions if q.category in SCORED_CATEGORIES]


def evaluate(
    path: Path, samples: list[Sample], options: Options, log: Callable[[str], None] = print
) -> dict:
    """Run the benchmark over `samples` and return the report (see bench/README.md for its keys)."""
    embeddings.warm_up()  # load the model before anything is timed
    measurements = Measurements()
    users = []
    try:
        for sample in samples:
            ingested = kept_sample(sample) if options.reuse_users else None
            if ingested is None:
                ingested = _ingest(sample, measurements, log)
                users.append(ingested.user)
            else:
                measurements.reused_users += 1
                log(
                    f"{sample.sample_id}: {ingested.turns} turns of {ingested.user.username} reused"
                )
            measurements.turns += ingested.turns
            measurements.turns_without_episode += ingested.turns_without_episode
            _measure_sample(ingested, options, measurements)
    finally:
        if not (options.keep_users or options.reuse_users):
            delete_users(users)
    return _report(path, len(samples), options, measurements)


def _ingest(
    sample: Sample, measurements: Measurements, log: Callable[[str], None]
) -> IngestedSample:
    """`sample` ingested as a new user, timed."""
    started = time.perf_counter()
    ingested = ingest_sample(sample)
    elapsed = time.perf_counter() - started
    measurements.ingest_seconds += elapsed
    measurements.ingested_turns += ingested.turns
    log(
        f"{sample.sample_id}: {ingested.turns} turns ingested in {elapsed:.1f} s as {ingested.user.username}"
    )
    return ingested


def _measure_sample(ingested: IngestedSample, options: Options, measurements: Measurements) -> None:
    questions = scored_questions(ingested.sample)
    measurements.invalid_evidence_ids += sum(q.invalid_evidence for q in questions)
    measurements.questions_without_evidence += sum(1 for q in questions if not q.evidence)
    questions = [q for q in questions if q.evidence]
    baseline_rankings = _baseline_rankings(ingested.sample, questions, options.baselines)
    now = ingested.ended_at if options.asked_at == "end" and ingested.ended_at else timezone.now()
    for question, rankings in zip(questions, baseline_rankings, strict=True):
        ranked, elapsed_ms, tokens = ask(ingested, question.text, options.budget_tokens, now)
        measurements.context_ms.append(elapsed_ms)
        measurements.context_tokens.append(tokens)
        measurements.context_sources.append(len(ranked))
        rankings[SYSTEM] = ranked
        measurements.results.append(QuestionResult(question.category, question.evidence, rankings))


def ask(
    ingested: IngestedSample, question: str, budget_tokens: int, now: datetime
) -> tuple[list[str], float, int]:
    """The dia_ids of the context's source messages (first appearance, no repeats), the build time
    in ms (query embedding included: the query cache is cleared first) and the context's size in
    tokens. `now` is the moment the question is asked (what "last week" means, how much importance
    has faded)."""
    embeddings._embed_query_cached.cache_clear()
    started = time.perf_counter()
    context = build_context(ingested.user, question, budget_tokens=budget_tokens, now=now)
    elapsed_ms = (time.perf_counter() - started) * 1000
    dia_by_message = ingested.dia_by_message
    ranked = first_appearance(
        dia_by_message[message_id]
        for item in context.items
        for message_id in item.sources
        if message_id in dia_by_message
    )
    return ranked, elapsed_ms, context.tokens


def _baseline_rankings(
    sample: Sample, questions: list[Question], baselines: Sequence[str]
) -> list[dict]:
    if not baselines or not questions:
        return [{} for _ in questions]
    turns = sample.turns
    dense = bool({"dense", "rrf"} & set(baselines))
    index = TurnIndex(
        [t.dia_id for t in turns],
        [f"{t.speaker or 'User'}: {t.content}" for t in turns],
        dense=dense,
    )
    vectors: list[np.ndarray | None] = [None] * len(questions)
    if dense:
        vectors = list(embed_all([q.text for q in questions]))
    return [index.rankings(q.text, v, baselines) for q, v in zip(questions, vectors, strict=True)]


def _report(path: Path, conversations: int, options: Options, m: Measurements) -> dict:
    system = summarise(m.results, SYSTEM, options.ks)
    report = {
        "dataset": str(path),
        "conversations": conversations,
        "turns": m.turns,
        "turns_without_episode": m.turns_without_episode,
        "questions": system.pop("questions"),
        **system,
        "context_ms": _latency(m.context_ms),
        "context_tokens_mean": _mean(m.context_tokens),
        "context_sources_mean": _mean(m.context_sources),
        "budget_tokens": options.budget_tokens,
        "asked_at": options.asked_at,
        "ingest_seconds": round(m.ingest_seconds, 2),
        "ingested_turns": m.ingested_turns,
        "ingest_turns_per_s": round(m.ingested_turns / m.ingest_seconds, 2)
        if m.ingest_seconds
        else None,
        "reused_users": m.reused_users,
        "invalid_evidence_ids": m.invalid_evidence_ids,
        "questions_without_evidence": m.questions_without_evidence,
        "baselines": {name: summarise(m.results, name, options.ks) for name in options.baselines},
    }
    return report


def _latency(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "p95": None}
    return {"p50": round(percentile(values, 50), 1), "p95": round(percentile(values, 95), 1)}


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None
