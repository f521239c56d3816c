"""The user's time zone: relative dates, "due soon" and pages follow the user's clock, not the
server's."""

from __future__ import annotations

from datetime import UTC, datetime

from django.test import Client

from accounts.models import User
from chat.models import Conversation, Message
from memories.models import Memory
from memories.pipeline import message_process
from memories.selectors import due_soon
from tests.factories import make_memory

# 20:00 UTC on Thursday 26 November 2026 is already Friday 27 November, 09:00, in Auckland (UTC+13).
EVENING_UTC = datetime(2026, 11, 26, 20, 0, tzinfo=UTC)


def _said(user, text: str, when: datetime) -> Message:
    conversation = Conversation.objects.create(user=user, created_at=when, last_activity_at=when)
    message = Message.objects.create(
        conversation=conversation, role="user", content=text, created_at=when
    )
    message_process(message_id=message.pk)
    return message


def test_tomorrow_is_the_users_tomorrow(alice, bob):
    alice.time_zone = "Pacific/Auckland"
    alice.save()

    for user in (alice, bob):  # bob keeps the default, UTC
        _said(user, "I have a dentist appointment tomorrow.", EVENING_UTC)

    assert Memory.objects.get(user=alice, kind="event").attributes == {"date": "2026-11-28"}
    assert Memory.objects.get(user=bob, kind="event").attributes == {"date": "2026-11-27"}


def test_due_soon_counts_days_on_the_users_clock(alice):
    make_memory(alice, "The tax return is due", kind="project", attributes={"date": "2026-11-29"})
    assert due_soon(user=alice, now=EVENING_UTC) == []  # UTC: Thursday, the 29th is three days away

    alice.time_zone = "Pacific/Auckland"
    alice.save()

    assert [m.text for m in due_soon(user=alice, now=EVENING_UTC)] == ["The tax return is due"]


def test_signup_keeps_the_browsers_zone_and_settings_change_it(db):
    client = Client()
    form = {"username": "dora", "password1": "a-long-pass-123", "password2": "a-long-pass-123"}
    client.post("/accounts/signup/", {**form, "time_zone": "Europe/Paris"})
    dora = User.objects.get(username="dora")
    assert dora.time_zone == "Europe/Paris"

    settings_form = {"memory_enabled": "on", "temporary_chat_hours": 24}
    bad = client.post(
        "/accounts/privacy/settings/", {**settings_form, "account-time_zone": "Mars/Olympus"}
    )
    assert bad.status_code == 200 and b"Select a valid choice" in bad.content
    client.post("/accounts/privacy/settings/", {**settings_form, "account-time_zone": "Asia/Tokyo"})
    dora.refresh_from_db()
    assert dora.time_zone == "Asia/Tokyo"


def test_an_odd_zone_from_the_browser_falls_back_to_utc(db):
    form = {"username": "erin", "password1": "a-long-pass-123", "password2": "a-long-pass-123"}
    Client().post("/accounts/signup/", {**form, "time_zone": "<script>"})
    assert User.objects.get(username="erin").time_zone == "UTC"


def test_pages_show_times_on_the_users_clock(alice, alice_client):
    alice.time_zone = "Asia/Kolkata"  # UTC+5:30
    alice.save()
    conversation = Conversation.objects.create(
        user=alice, created_at=EVENING_UTC, last_activity_at=EVENING_UTC
    )
    Message.objects.create(
        conversation=conversation, role="user", content="Hello", created_at=EVENING_UTC
    )

    page = alice_client.get(f"/chat/{conversation.pk}/").content.decode()

    assert "01:30" in page or "1:30" in page  # 20:00 UTC is 01:30 the next day in Kolkata


def test_the_context_counts_days_on_the_users_clock(alice, settings):
    from memories.retrieval import build_context

    settings.CONTEXT_MIN_SIMILARITY = 0.99  # only the "due soon" list can bring it
    tax = make_memory(
        alice, "The tax return is due", kind="project", attributes={"date": "2026-11-29"}
    )
    assert build_context(alice, "hello there", now=EVENING_UTC).memory_ids == []

    alice.time_zone = "Pacific/Auckland"
    alice.save()

    assert build_context(alice, "hello there", now=EVENING_UTC).memory_ids == [tax.pk]
