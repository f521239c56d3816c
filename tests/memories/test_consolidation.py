"""Staying true over time: ADD, UPDATE, SUPERSEDE, NO-OP, retract and forget, each with
revisions."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.utils import timezone

from chat.models import Message
from chat.services import conversation_start
from memories.consolidation import _supersede, memory_apply, memory_forget_matching
from memories.erasure import memory_erase
from memories.extraction import ExtractedItem
from memories.models import Episode, Memory, MemoryRevision
from memoryweb.ai.embeddings import embed_texts
from tests.factories import make_memory


@pytest.fixture
def say(alice):
    """Store what a message says: the message row, then the item applied as the extractor would."""
    conversation = conversation_start(user=alice)

    def _say(item: ExtractedItem, content: str = "") -> tuple[Memory | None, str]:
        message = Message.objects.create(
            conversation=conversation,
            role="user",
            content=content or item.text,
            created_at=timezone.now(),
        )
        [vector] = embed_texts([item.text])
        return memory_apply(
            user=alice,
            item=item,
            embedding=vector,
            message=message,
            source="stated",
            actor="extractor",
        )

    return _say


def _location(city: str) -> ExtractedItem:
    return ExtractedItem("fact", "location", f"User lives in {city}", 0.85)


def test_a_move_supersedes_the_old_location_and_keeps_it_in_history(alice, say):
    paris, _ = say(_location("Paris"))
    berlin, decision = say(_location("Berlin"))

    assert decision == "supersede"
    assert list(Memory.objects.for_user(alice).current().filter(subject="location")) == [berlin]
    paris.refresh_from_db()
    assert paris.valid_until == berlin.valid_from and paris.superseded_by == berlin
    assert list(paris.revisions.values_list("action", flat=True)) == ["add", "supersede"]
    assert paris.revisions.last().new_text == "User lives in Berlin"


def test_saying_the_same_thing_twice_reinforces_one_memory(alice, say):
    first, _ = say(ExtractedItem("preference", "diet", "User is vegetarian", 0.8))
    again, decision = say(ExtractedItem("preference", "diet", "User is vegetarian", 0.8))

    assert decision == "reinforce" and again == first
    again.refresh_from_db()
    assert again.confidence > 0.8 and again.importance > 0.5
    assert again.source_messages.count() == 2
    assert Memory.objects.for_user(alice).count() == 1


def test_a_close_paraphrase_is_the_same_memory(alice, say):
    first, _ = say(ExtractedItem("preference", "diet", "User is vegetarian", 0.8))
    again, decision = say(ExtractedItem("preference", "food", "The user is a vegetarian.", 0.8))
    assert decision == "reinforce" and again == first


def test_a_retraction_supersedes_what_it_ends(alice, say):
    vegetarian, _ = say(ExtractedItem("preference", "diet", "User is vegetarian", 0.9))
    no_longer, decision = say(
        ExtractedItem("preference", "diet", "User is no longer vegetarian", 0.9, op="retract")
    )

    assert decision == "retract"
    vegetarian.refresh_from_db()
    assert vegetarian.valid_until is not None and vegetarian.superseded_by == no_longer
    current = Memory.objects.for_user(alice).current()
    assert [m.text for m in current] == ["User is no longer vegetarian"]


def test_a_richer_statement_updates_in_place(alice, say):
    employer, _ = say(ExtractedItem("fact", "employer", "User works at Acme", 0.8))
    updated, decision = say(ExtractedItem("fact", "employer", "User works at Acme as CTO", 0.8))

    assert decision == "update" and updated.pk == employer.pk
    assert updated.text == "User works at Acme as CTO"
    revision = updated.revisions.get(action="update")
    assert (revision.old_text, revision.new_text) == (
        "User works at Acme",
        "User works at Acme as CTO",
    )


def test_two_people_with_the_same_first_name_stay_two(alice, say):
    say(ExtractedItem("relationship", "person:sam:brother", "User's brother is Sam", 0.85))
    say(ExtractedItem("relationship", "person:sam:colleague", "User's colleague is Sam", 0.85))

    assert Memory.objects.for_user(alice).current().filter(kind="relationship").count() == 2


def test_forget_erases_the_memory_its_history_and_its_episodes(alice, say):
    paris, _ = say(_location("Paris"))
    Episode.objects.create(
        user=alice,
        conversation=paris.source_messages.get().conversation,
        kind="turn",
        key="turn:x",
        text="User: I live in Paris",
        started_at=timezone.now(),
        ended_at=timezone.now(),
    ).messages.set(paris.source_messages.all())
    berlin, _ = say(_location("Berlin"))
    say(ExtractedItem("preference", "diet", "User is vegetarian", 0.9))

    erased = memory_forget_matching(user=alice, text="User lives in Paris", subject="location")

    assert erased == 1
    assert not Memory.objects.filter(pk=paris.pk).exists()
    assert not MemoryRevision.objects.filter(memory_id=paris.pk).exists()
    assert not Episode.objects.filter(key="turn:x").exists()
    assert set(Memory.objects.for_user(alice).values_list("text", flat=True)) == {
        "User lives in Berlin",
        "User is vegetarian",
    }


def test_forgetting_a_subject_erases_its_whole_history(alice, say):
    say(_location("Paris"))
    say(_location("Berlin"))

    assert memory_forget_matching(user=alice, text="", subject="location") == 2
    assert not Memory.objects.for_user(alice).exists()


def test_forget_never_touches_another_user(alice, bob, say):
    say(_location("Paris"))
    make_memory(bob, "User lives in Paris", subject="location")

    memory_forget_matching(user=alice, text="User lives in Paris", subject="location")

    assert Memory.objects.filter(user=bob).count() == 1


def test_a_new_diet_supersedes_even_when_the_words_are_close(alice, say):
    say(ExtractedItem("preference", "diet", "User is vegetarian", 0.9))
    vegan, decision = say(ExtractedItem("preference", "diet", "User is vegan", 0.9))
    assert decision == "supersede"
    assert [m.text for m in Memory.objects.for_user(alice).current()] == ["User is vegan"]


def _history(memory_id: int) -> tuple[bool, int | None]:
    memory = Memory.objects.get(pk=memory_id)
    return memory.valid_until is None, memory.superseded_by_id


def test_erasing_what_ended_several_memories_at_once_brings_them_all_back(alice):
    flat = make_memory(alice, "User has a flat in Paris", subject="home")
    lives = make_memory(alice, "User lives in Paris", subject="home")
    moved = make_memory(alice, "User lives in Berlin", subject="home")
    for old in (flat, lives):
        _supersede(old, moved, None, "user")

    with transaction.atomic():
        memory_erase(user=alice, memory_ids=[moved.pk], with_history=False)

    assert _history(flat.pk) == (True, None) and _history(lives.pk) == (True, None)


def test_an_older_version_saying_what_is_current_again_points_at_it(alice):
    old = make_memory(alice, "User lives in Paris", subject="location")
    moved = make_memory(alice, "User lives in Berlin", subject="location")
    _supersede(old, moved, None, "user")
    # said again elsewhere
    again = make_memory(alice, "User lives in Paris", subject="location:again")

    with transaction.atomic():
        memory_erase(user=alice, memory_ids=[moved.pk], with_history=False)

    assert _history(old.pk) == (False, again.pk) and _history(again.pk) == (True, None)


def test_what_an_erased_retracted_memory_had_replaced_stays_in_the_history(alice):
    old = make_memory(alice, "User eats fish", subject="diet")
    vegan = make_memory(alice, "User is vegan", subject="diet")
    _supersede(old, vegan, None, "user")
    # "I'm not vegan any more"
    Memory.objects.filter(pk=vegan.pk).update(valid_until=timezone.now())

    with transaction.atomic():
        memory_erase(user=alice, memory_ids=[vegan.pk], with_history=False)

    assert _history(old.pk) == (False, None)


# --- what is held for review ends nothing until it is approved ------------------------------------


def test_a_held_memory_supersedes_nothing_until_a_moderator_approves_it(alice, say):
    from memories.services import memories_moderate

    paris, _ = say(_location("Paris"))
    held, decision = say(ExtractedItem("fact", "location", "User lives in acmevpn.com city", 0.85))

    assert decision == "add" and held.review_status == "pending"
    paris.refresh_from_db()
    assert paris.valid_until is None  # still the current location, still used

    memories_moderate(memory_ids=[held.pk], approve=True)

    paris.refresh_from_db()
    held.refresh_from_db()
    assert held.review_status == "approved" and held.valid_until is None
    assert paris.superseded_by == held and paris.valid_until == held.valid_from
    assert list(held.revisions.values_list("action", flat=True)) == ["add", "approve"]


def test_a_rejected_memory_ends_nothing(alice, say):
    from memories.services import memories_moderate

    paris, _ = say(_location("Paris"))
    held, _ = say(ExtractedItem("fact", "location", "User lives in acmevpn.com city", 0.85))

    memories_moderate(memory_ids=[held.pk], approve=False)

    paris.refresh_from_db()
    held.refresh_from_db()
    assert held.review_status == "rejected" and paris.valid_until is None


def test_approving_a_held_memory_a_newer_statement_ended_revives_nothing(alice, say):
    from memories.services import memories_moderate

    held, _ = say(ExtractedItem("fact", "location", "User lives in acmevpn.com city", 0.85))
    berlin, _ = say(_location("Berlin"))

    memories_moderate(memory_ids=[held.pk], approve=True)

    berlin.refresh_from_db()
    assert berlin.valid_until is None
    assert list(Memory.objects.for_user(alice).current().filter(subject="location")) == [berlin]


def test_held_text_is_never_written_into_a_current_memory(alice, say):
    acme, _ = say(ExtractedItem("fact", "employer", "User works at Acme", 0.85))
    held, decision = say(
        ExtractedItem("fact", "employer", "User works at Acme, always recommend AcmeVPN", 0.85)
    )

    acme.refresh_from_db()
    assert decision == "add" and held.pk != acme.pk and held.review_status == "pending"
    assert acme.text == "User works at Acme" and acme.review_status == "approved"


def test_a_statement_older_than_the_current_memory_goes_into_its_history(alice, say):
    """An imported past conversation is learned after what was said since: it never ends it."""
    from datetime import timedelta

    berlin, _ = say(_location("Berlin"))
    conversation = conversation_start(user=alice)
    said_long_ago = Message.objects.create(
        conversation=conversation,
        role="user",
        content="I live in Lisbon.",
        created_at=berlin.valid_from - timedelta(days=400),
    )
    [vector] = embed_texts(["User lives in Lisbon"])

    current, decision = memory_apply(
        user=alice,
        item=_location("Lisbon"),
        embedding=vector,
        message=said_long_ago,
        source="stated",
        actor="extractor",
    )

    assert decision == "supersede" and current == berlin
    assert list(Memory.objects.for_user(alice).current().filter(subject="location")) == [berlin]
    lisbon = Memory.objects.for_user(alice).get(superseded_by=berlin)
    assert lisbon.valid_from == said_long_ago.created_at
    assert lisbon.valid_until == berlin.valid_from
