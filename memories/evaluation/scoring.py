"""Recall@k of evidence turns, averaged per question, overall and by category; latency
percentiles."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass
class QuestionResult:
    """One scored question: its evidence and every system's ranked dia_ids."""

    category: int
    evidence: list[str]
    rankings: dict[str, list[str]] = field(default_factory=dict)  # system name → ranked dia_ids


def recall_at_k(ranked: Sequence[str], evidence: Iterable[str], k: int) -> float:
    """The share of `evidence` found among the first `k` of `ranked` (duplicates in `ranked` count
    once)."""
    wanted = set(evidence)
    if not wanted:
        raise ValueError("a question without evidence cannot be scored")
    top = set(ranked[:k])
    return len(wanted & top) / len(wanted)


def first_appearance(ids: Iterable[str]) -> list[str]:
    """`ids` without repeats, in order of first appearance."""
    return list(dict.fromkeys(ids))


def summarise(results: list[QuestionResult], system: str, ks: Sequence[int]) -> dict:
    """{"questions", "recall@k"…, "by_category": {"1": {"questions", "recall@k"…}, …}} for one
    system."""
    by_category: dict[int, list[QuestionResult]] = defaultdict(list)
    for result in results:
        by_category[result.category].append(result)
    summary = _mean_recalls(results, system, ks)
    summary["by_category"] = {
        str(category): _mean_recalls(group, system, ks)
        for category, group in sorted(by_category.items())
    }
    return summary


def _mean_recalls(results: list[QuestionResult], system: str, ks: Sequence[int]) -> dict:
    summary: dict = {"questions": len(results)}
    for k in ks:
        values = [recall_at_k(r.rankings[system], r.evidence, k) for r in results]
        summary[f"recall@{k}"] = round(sum(values) / len(values), 4) if values else None
    return summary


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100) by linear interpolation between the nearest ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
