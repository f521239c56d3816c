"""Special categories (GDPR art. 9): detected at extraction, not stored without the user's
opt-in."""

from __future__ import annotations

import pytest

from accounts.services import consent_set
from chat.services import chat_turn, conversation_end
from memories.models import Episode, Memory
from memories.sensitive import sensitive_categories


@pytest.mark.parametrize(
    "text, categories",
    [
        ("I was diagnosed with type 2 diabetes last year", {"health"}),
        ("I go to church every Sunday", {"religion"}),
        ("I came out as gay to my parents", {"sexuality"}),
        ("I voted for the Greens", {"politics"}),
        ("I joined the union at work", {"union"}),
        ("I did a DNA test for fun", {"genetic"}),
        ("I'm vegetarian and I live in Paris", set()),
        ("I ran a race last weekend", set()),
    ],
)
def test_it_detects_special_categories(text, categories):
    assert sensitive_categories(text) == categories


def _say(user, run_on_commit, *texts):
    conversation = None
    for text in texts:
        conversation = run_on_commit(
            chat_turn, user=user, conversation=conversation, text=text
        ).conversation
    run_on_commit(conversation_end, conversation=conversation)
    return conversation


def test_a_sensitive_statement_without_opt_in_is_not_stored(alice, run_on_commit):
    _say(
        alice,
        run_on_commit,
        "I live in Lisbon and I was diagnosed with epilepsy.",
        "I'm allergic to peanuts.",
    )

    texts = list(Memory.objects.filter(user=alice).values_list("text", flat=True))
    assert texts == ["User lives in Lisbon"]
    episodes = " ".join(Episode.objects.filter(user=alice).values_list("text", flat=True))
    assert "epilepsy" not in episodes and "peanuts" not in episodes


def test_with_opt_in_it_is_stored_and_labelled(alice, run_on_commit):
    consent_set(user=alice, purpose="sensitive:health", granted=True, method="consent page")

    _say(alice, run_on_commit, "I'm allergic to peanuts.")

    memory = Memory.objects.get(user=alice)
    assert (memory.text, memory.sensitive_categories) == ("User is allergic to peanuts", ["health"])


def test_a_memory_in_two_categories_is_used_only_with_both_opted_in(alice):
    from memories.retrieval import build_context
    from memories.services import memory_remember

    for category in ("health", "religion"):
        consent_set(
            user=alice, purpose=f"sensitive:{category}", granted=True, method="consent page"
        )
    memory, _ = memory_remember(
        user=alice, kind="fact", text="User fasts for Ramadan despite diabetes"
    )
    assert sorted(memory.sensitive_categories) == ["health", "religion"]
    assert build_context(alice, "fasting and diabetes").memory_ids == [memory.pk]

    consent_set(user=alice, purpose="sensitive:religion", granted=False, method="consent page")

    assert build_context(alice, "fasting and diabetes").memory_ids == []
