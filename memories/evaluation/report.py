"""The report as a readable table: the system and each baseline side by side, by category."""

from __future__ import annotations

from collections.abc import Sequence

from memories.evaluation.locomo import CATEGORY_NAMES
from memories.evaluation.run import SYSTEM


def format_report(report: dict, ks: Sequence[int]) -> str:
    systems = [SYSTEM, *report["baselines"]]
    summaries = {SYSTEM: report, **report["baselines"]}
    lines = [
        f"LoCoMo recall@k of evidence turns — {report['dataset']}",
        f"{report['conversations']} conversations, {report['turns']} turns, {report['questions']} questions "
        f"(categories 1–4); {report['invalid_evidence_ids']} invalid evidence ids dropped, "
        f"{report['questions_without_evidence']} questions left without evidence skipped; "
        f"{report['turns_without_episode']} turns without a turn episode; questions asked at: {report['asked_at']}",
        "",
        *_table(systems, summaries, ks),
        "",
        f"context build (memoryweb): p50 {_num(report['context_ms']['p50'])} ms, "
        f"p95 {_num(report['context_ms']['p95'])} ms; mean {_num(report['context_tokens_mean'])} tokens, "
        f"{_num(report['context_sources_mean'])} source turns (budget {report['budget_tokens']} tokens)",
        f"ingest: {report['ingested_turns']} turns in {report['ingest_seconds']} s "
        f"= {_num(report['ingest_turns_per_s'])} turns/s (rules extraction, local embeddings)"
        + (
            f"; {report['reused_users']} conversations' users reused"
            if report["reused_users"]
            else ""
        ),
    ]
    return "\n".join(lines)


def _table(systems: list[str], summaries: dict, ks: Sequence[int]) -> list[str]:
    cell = 7
    block = cell * len(ks)
    label = 18
    header = " " * (label + 6) + "".join(f"{name:>{block}} │" for name in systems)
    subheader = f"{'category':<{label}}{'n':>6}" + "".join(
        "".join(f"{'@' + str(k):>{cell}}" for k in ks) + " │" for _ in systems
    )
    rows = [header, subheader, "─" * len(subheader)]
    categories = sorted(summaries[SYSTEM]["by_category"], key=int)
    for category in categories:
        name = f"{category} {CATEGORY_NAMES.get(int(category), '')}".strip()
        count = summaries[SYSTEM]["by_category"][category]["questions"]
        rows.append(
            _row(
                name,
                count,
                [summaries[s]["by_category"][category] for s in systems],
                ks,
                label,
                cell,
            )
        )
    rows.append("─" * len(subheader))
    rows.append(
        _row(
            "all", summaries[SYSTEM]["questions"], [summaries[s] for s in systems], ks, label, cell
        )
    )
    return rows


def _row(
    name: str, count: int, summaries: list[dict], ks: Sequence[int], label: int, cell: int
) -> str:
    cells = "".join(
        "".join(f"{_num(s.get(f'recall@{k}'), 3):>{cell}}" for k in ks) + " │" for s in summaries
    )
    return f"{name:<{label}}{count:>6}{cells}"


def _num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"
