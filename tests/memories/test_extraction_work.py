"""The offline extractor keeps the user's work (projects, problems, goals, tools and stack, the
business, terms they define) on a labelled set: precision and recall printed and held."""

from __future__ import annotations

from memories.extraction import extract_with_rules
from tests.memories.work_cases import NEGATIVES, POSITIVES

WORK_PREFIXES = ("problem:", "goal:", "tool:", "stack:", "business", "project:", "term:")


def _work_items(text: str):
    return [i for i in extract_with_rules(text) if i.subject.startswith(WORK_PREFIXES)]


def test_the_labelled_set_is_big_enough():
    assert len(POSITIVES) >= 60 and len(NEGATIVES) >= 30


def test_precision_and_recall_on_the_labelled_set(report_score):
    found = {text: _work_items(text) for text, _, _ in POSITIVES}
    hits = [
        text
        for text, kind, prefix in POSITIVES
        if any(i.kind == kind and i.subject.startswith(prefix) for i in found[text])
    ]
    wrong = {text: _work_items(text) for text in NEGATIVES if _work_items(text)}
    produced = sum(len(items) for items in found.values()) + sum(map(len, wrong.values()))
    # an item on a positive that is not the expected one is no error: "we're using FastAPI and
    # struggling with pooling" rightly gives a tool and a problem
    precision = 1 - sum(map(len, wrong.values())) / max(1, produced)
    recall = len(hits) / len(POSITIVES)
    report_score(
        f"work extraction: precision {precision:.3f}, recall {recall:.3f} "
        f"({len(POSITIVES)} positives, {len(NEGATIVES)} negatives)"
    )
    missed = [text for text, _, _ in POSITIVES if text not in hits]
    assert wrong == {}, wrong
    assert recall >= 0.9, missed


def test_the_seeds_project_reset_turn_gives_the_stack_and_the_problem():
    items = extract_with_rules(
        "We're using FastAPI and struggling with database connection pooling."
    )
    texts = {i.subject.split(":")[0]: i.text for i in items}
    assert texts[
        "tool"
    ] == "User is using FastAPI and struggling with database connection pooling" or (
        "FastAPI" in texts["tool"]
    )
    assert texts["problem"] == "User is struggling with database connection pooling"
