"""English text helpers (memories.text): negation decides whether two statements can say the
same."""

from __future__ import annotations

import pytest

from memories import text
from memories.consolidation import Decision, memory_apply
from memories.extraction import ExtractedItem
from memoryweb.ai.embeddings import embed_texts


@pytest.mark.parametrize(
    "statement",
    [
        "User is not vegetarian",
        "User is no longer vegan",
        "User never drinks coffee",
        "User doesn't eat meat",
        "User won't fly",
        "User has no car",
        "User does not smoke any more",
        "User cannot eat gluten",  # these three were negations only in the extraction rules' list
        "User eats neither meat nor fish",
        "User can't swim",
    ],
)
def test_a_negated_statement_is_seen_as_negated(statement):
    assert text.negated(statement)


@pytest.mark.parametrize(
    "statement", ["User is vegetarian", "User knows Nora", "User can eat gluten", "User notes"]
)
def test_an_affirmative_statement_is_not(statement):
    assert not text.negated(statement)


def _apply(user, statement: str):
    [vector] = embed_texts([statement])
    item = ExtractedItem("fact", "", statement, 0.8)
    return memory_apply(
        user=user, item=item, embedding=vector, message=None, source="stated", actor="extractor"
    )


def test_cannot_is_not_the_same_statement_as_can(alice):
    """Their embeddings are within SAME_STATEMENT_DISTANCE; with "cannot" read as affirmative (the
    statement list before the two negation lists were merged), the second reinforced the first."""
    can, _ = _apply(alice, "User can eat gluten")
    cannot, decision = _apply(alice, "User cannot eat gluten")
    assert decision == Decision.ADD and cannot.pk != can.pk
