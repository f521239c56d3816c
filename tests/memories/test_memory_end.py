"""A memory can carry an end: "I'm in Lisbon until Friday" (or a date set on its page). It is used
through that day on the user's clock, not after, and the portal says "until …"."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from django.utils import timezone

from chat.services import chat_turn
from memories.extraction import extract_with_rules
from memories.models import Memory
from memories.retrieval import build_context
from memories.services import memory_remember, memory_set_end

TUESDAY = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)


def _memories(context) -> list[str]:
    return [i.text for i in context.items if i.type == "memory"]


def test_until_a_day_is_read_as_the_end():
    [item] = extract_with_rules("I'm in Lisbon until Friday.", now=TUESDAY)
    assert item.subject == "whereabouts" and item.attributes["until"] == "2026-03-13"
    assert "Lisbon" in item.text
    [leave] = extract_with_rules("I'm on parental leave until April 20.", now=TUESDAY)
    assert leave.attributes["until"] == "2026-04-20"
    assert extract_with_rules("I'm in Lisbon until yesterday.", now=TUESDAY) == []


def test_a_stay_is_used_until_its_day_ends_and_not_after(alice, run_on_commit):
    run_on_commit(chat_turn, user=alice, conversation=None, text="I'm in Lisbon until tomorrow.")
    stay = Memory.objects.get(user=alice, subject="whereabouts")
    assert stay.ends_at is not None and stay.ends_at > timezone.now() + timedelta(hours=12)
    assert "Lisbon" in " ".join(_memories(build_context(alice, "where am I this week?")))

    Memory.objects.filter(pk=stay.pk).update(ends_at=timezone.now() - timedelta(minutes=1))

    # the memory is no longer used (the chat itself stays a past chat, with its date)
    assert not any("Lisbon" in t for t in _memories(build_context(alice, "where am I this week?")))
    assert Memory.objects.filter(pk=stay.pk).exists()  # kept, and shown, just not used


def test_an_end_set_on_the_memorys_page_is_shown_and_can_be_cleared(alice, alice_client):
    memory, _ = memory_remember(user=alice, kind="fact", text="User is training for a race")
    last_day = (timezone.now() + timedelta(days=3)).date()

    alice_client.post(f"/memories/{memory.pk}/end/", {"ends_on": last_day.isoformat()})

    memory.refresh_from_db()
    assert memory.ends_at is not None
    listing = alice_client.get("/memories/").content.decode()
    assert f"until {last_day:%b} {last_day.day}, {last_day.year}" in listing
    page = alice_client.get(f"/memories/{memory.pk}/").content.decode()
    assert f'value="{last_day.isoformat()}"' in page
    alice_client.post(f"/memories/{memory.pk}/end/", {"ends_on": ""})
    memory.refresh_from_db()
    assert memory.ends_at is None


def test_another_users_memory_end_cannot_be_set(alice, bob_client):
    memory, _ = memory_remember(user=alice, kind="fact", text="User is training for a race")
    response = bob_client.post(f"/memories/{memory.pk}/end/", {"ends_on": "2030-01-01"})
    assert response.status_code == 404


def test_the_end_holds_through_the_last_day_on_the_users_clock(alice):
    alice.time_zone = "Asia/Tokyo"
    alice.save()
    memory, _ = memory_remember(user=alice, kind="fact", text="User is training for a race")
    memory_set_end(memory=memory, last_day=date(2030, 1, 1))
    memory.refresh_from_db()
    assert memory.ends_at == datetime(2030, 1, 1, 15, 0, tzinfo=UTC)  # midnight in Tokyo
