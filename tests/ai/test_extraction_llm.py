"""Extraction by the model (memories.pipeline.message_process) through the real `openai` client, and
the rule-based fallback when the model fails: a message is never left without extraction."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.utils import timezone

from chat.models import Message
from chat.services import conversation_start
from memories.extraction import EXTRACTION_SCHEMA, extract, extract_with_llm
from memories.models import Episode, Memory, MemoryRevision
from memories.pipeline import message_process
from tests.ai.openai_server import TOO_SLOW, chat_reply, delayed, json_reply, malformed_body
from tests.factories import memories_saying

pytestmark = pytest.mark.django_db


def _say(user, *texts: str, conversation=None) -> Message:
    """Store user messages in one conversation (unprocessed, as the chat turn leaves them); the last
    one."""
    conversation = conversation or conversation_start(user=user)
    message = None
    for text in texts:
        message = Message.objects.create(
            conversation=conversation,
            role=Message.Role.USER,
            content=text,
            created_at=timezone.now(),
        )
    return message


def _assert_processed(message: Message) -> None:
    message.refresh_from_db()
    assert message.processed_at is not None
    episode = Episode.objects.get(key=f"turn:{message.pk}")
    assert episode.user == message.conversation.user
    assert list(episode.messages.all()) == [message]
    assert episode.embedding is not None


def test_it_stores_the_models_items_with_their_confidence_pin_and_provenance(alice, llm_server):
    earlier = _say(alice, "We just moved house.")
    # learned from already (a conversation's messages are processed in order): context only now
    Message.objects.filter(pk=earlier.pk).update(processed_at=timezone.now())
    message = _say(
        alice,
        "No meat for me, ever. And home is Lisbon these days.",
        conversation=earlier.conversation,
    )
    llm_server.script_chat(
        json_reply(
            {
                "items": [
                    {
                        "kind": "preference",
                        "subject": " Diet ",
                        "text": "User eats no meat",
                        "confidence": 0.93,
                        "pinned": True,
                    },
                    {
                        "kind": "fact",
                        "subject": "location",
                        "text": "User lives in Lisbon",
                        "confidence": 0.61,
                        "pinned": False,
                    },
                ]
            }
        )
    )

    assert message_process(message_id=message.pk) is True

    [request] = llm_server.chat_requests
    assert request.body["model"] == "test-extract"
    assert request.body["response_format"]["type"] == "json_schema"
    assert request.body["response_format"]["json_schema"]["name"] == "memories"
    assert request.body["response_format"]["json_schema"]["schema"] == EXTRACTION_SCHEMA
    prompt = request.messages[-1]["content"]
    assert "Latest message [message " in prompt
    assert prompt.endswith("]:\nNo meat for me, ever. And home is Lisbon these days.")
    assert "We just moved house." in prompt  # the earlier message, as context
    assert f"Message time: {message.created_at:%A %Y-%m-%d %H:%M} UTC" in prompt

    memories = {m.text: m for m in Memory.objects.filter(user=alice)}
    assert set(memories) == {"User eats no meat", "User lives in Lisbon"}
    diet, location = memories["User eats no meat"], memories["User lives in Lisbon"]
    assert (diet.kind, diet.subject, diet.confidence, diet.pinned) == (
        "preference",
        "diet",
        0.93,
        True,
    )
    assert (location.kind, location.subject, location.confidence, location.pinned) == (
        "fact",
        "location",
        0.61,
        False,
    )
    assert diet.importance > location.importance  # pinned memories matter more
    for memory in (diet, location):
        assert memory.source == Memory.Source.STATED
        assert list(memory.source_messages.all()) == [message]
        assert memory.revisions.get().action == "add"
        assert memory.revisions.get().message == message
        assert memory.revisions.get().actor == MemoryRevision.Actor.EXTRACTOR
        assert memory.embedding is not None
    _assert_processed(message)
    assert not Episode.objects.filter(key=f"turn:{earlier.pk}").exists()  # not processed again


def test_it_skips_malformed_items_and_keeps_the_valid_ones(alice, llm_server):
    message = _say(alice, "I work at Acme and I think pineapple on pizza is fine.")
    llm_server.script_chat(
        json_reply(
            {
                "items": [
                    {
                        "kind": "opinion",
                        "subject": "pizza",
                        "text": "User accepts pineapple on pizza",
                        "confidence": 0.8,
                        "pinned": False,
                    },
                    {
                        "kind": "fact",
                        "subject": "empty",
                        "text": "   ",
                        "confidence": 0.8,
                        "pinned": False,
                    },
                    {"kind": "fact", "subject": "no text", "confidence": 0.8, "pinned": False},
                    {
                        "kind": "fact",
                        "subject": "not text",
                        "text": 42,
                        "confidence": 0.8,
                        "pinned": False,
                    },
                    "User likes pizza",
                    None,
                    {
                        "kind": "fact",
                        "subject": "employer",
                        "text": "User works at Acme",
                        "confidence": "high",
                        "pinned": False,
                    },
                    {
                        "kind": "fact",
                        "subject": "certain",
                        "text": "User has a job",
                        "confidence": 7,
                        "pinned": False,
                    },
                ]
            }
        )
    )

    assert message_process(message_id=message.pk) is True

    memories = {m.text: m for m in Memory.objects.filter(user=alice)}
    assert set(memories) == {"User works at Acme", "User has a job"}
    assert memories["User works at Acme"].confidence == 0.7  # unreadable confidence: the default
    assert memories["User has a job"].confidence == 1.0  # clamped to 0..1
    _assert_processed(message)


def test_it_stores_nothing_when_the_model_finds_nothing(alice, llm_server):
    message = _say(alice, "I'm vegetarian.")
    llm_server.script_chat(json_reply({"items": []}))

    assert message_process(message_id=message.pk) is True

    # The model's empty answer is the answer: the rules do not second-guess it.
    assert not Memory.objects.filter(user=alice).exists()
    _assert_processed(message)


def _assert_rules_fallback(alice, message: Message) -> None:
    vegetarian = Memory.objects.get(user=alice, kind="preference", subject="diet")
    assert vegetarian.text == "User is vegetarian"
    assert vegetarian.source == Memory.Source.STATED
    assert list(vegetarian.source_messages.all()) == [message]
    _assert_processed(message)


def test_it_falls_back_to_the_rules_when_the_model_keeps_returning_malformed_json(
    alice, llm_server
):
    message = _say(alice, "I'm vegetarian.")
    llm_server.script_chat(*[chat_reply('{"items": [{"kind": "preference", ') for _ in range(4)])

    assert message_process(message_id=message.pk) is True

    assert len(llm_server.chat_requests) == 4  # both modes, each with its repair retry
    assert llm_server.pending() == {}
    _assert_rules_fallback(alice, message)


def test_it_falls_back_to_the_rules_when_the_answer_has_no_items_list(alice, llm_server):
    message = _say(alice, "I'm vegetarian.")
    llm_server.script_chat(
        json_reply({"memories": [{"kind": "preference", "text": "User eats no meat"}]})
    )

    assert message_process(message_id=message.pk) is True

    assert not memories_saying("User eats no meat")
    _assert_rules_fallback(alice, message)


def test_it_falls_back_to_the_rules_when_the_model_times_out(alice, llm_server):
    message = _say(alice, "I'm vegetarian.")
    # Had the client waited for this late answer, the model's "nothing" would have been stored
    # instead.
    llm_server.script_chat(delayed(TOO_SLOW, json_reply({"items": []})))

    assert message_process(message_id=message.pk) is True

    assert len(llm_server.chat_requests) == 1  # a timeout is not retried (LLM_MAX_RETRIES=0)
    _assert_rules_fallback(alice, message)


def test_it_falls_back_to_the_rules_when_the_http_body_is_malformed(alice, llm_server):
    message = _say(alice, "I'm vegetarian.")
    llm_server.script_chat(*[malformed_body()] * 4)

    assert message_process(message_id=message.pk) is True

    _assert_rules_fallback(alice, message)


# --- dates, ops and message ids (extract_with_llm directly, through the same server) --------------

NOW = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)  # a Tuesday


def _item(text: str, **fields) -> dict:
    return {
        "kind": "fact",
        "subject": "",
        "text": text,
        "confidence": 0.8,
        "pinned": False,
        **fields,
    }


def test_the_prompt_gives_the_message_time_and_the_ids_of_the_messages(llm_server):
    llm_server.script_chat(json_reply({"items": []}))
    history = [(11, "We just moved house."), (12, "The boxes are everywhere.")]

    assert extract_with_llm("The launch is next Friday.", history, now=NOW, message_id=15) == []

    [request] = llm_server.chat_requests
    system, user = request.messages
    assert "resolve relative dates" in system["content"].lower().replace("\n", " ")
    assert user["content"] == (
        "Message time: Tuesday 2026-03-10 14:00 UTC\n\n"
        "Earlier messages (context):\n"
        "[message 11] We just moved house.\n"
        "[message 12] The boxes are everywhere.\n\n"
        "Latest message [message 15]:\n"
        "The launch is next Friday."
    )
    schema = request.body["response_format"]["json_schema"]["schema"]["properties"]["items"][
        "items"
    ]
    assert {"op", "message_id", "date", "status"} <= set(schema["required"])


def test_it_keeps_valid_dates_ops_statuses_and_cited_ids_and_drops_the_rest(llm_server):
    llm_server.script_chat(
        json_reply(
            {
                "items": [
                    _item(
                        "The API launch is due on 2026-03-20",
                        kind="project",
                        subject="project:api launch",
                        date="2026-03-20",
                        status="active",
                        message_id=15,
                    ),
                    # an earlier message
                    _item("User moved house", subject="location", message_id=11),
                    _item("User has boxes", subject="boxes", message_id="12"),  # an id as a string
                    # a relative date and a made-up id
                    _item(
                        "User's dentist visit",
                        kind="event",
                        subject="event:dentist",
                        date="next friday",
                        message_id=999,
                    ),
                    _item(
                        "User's exam",
                        kind="event",
                        subject="event:exam",
                        date="2026-02-30",
                        message_id=True,
                    ),
                    _item(
                        "User finished the thesis",
                        kind="project",
                        subject="project:thesis",
                        status="finished",
                    ),
                    _item(
                        "User is no longer vegetarian",
                        kind="preference",
                        subject="diet",
                        op="retract",
                    ),
                    _item("User lives in Paris", subject="location", op="forget"),
                    _item("User's address", op="forget"),  # forget without a subject keeps none
                    _item("User likes tea", kind="preference", subject="taste:tea", op="delete"),
                ]
            }
        )
    )
    history = [(11, "We just moved house."), (12, "The boxes are everywhere.")]

    found = extract_with_llm("...", history, now=NOW, message_id=15)
    items = {i.text: i for i in found}

    launch = items["The API launch is due on 2026-03-20"]
    assert (launch.attributes, launch.message_id, launch.op) == (
        {"date": "2026-03-20", "status": "active"},
        None,
        "add",
    )
    assert items["User moved house"].message_id == 11
    assert items["User has boxes"].message_id == 12
    dentist = items["User's dentist visit"]
    assert (dentist.attributes, dentist.message_id) == ({}, None)  # no made-up date, no made-up id
    assert items["User's exam"].attributes == {}
    assert items["User finished the thesis"].attributes == {}
    assert (
        items["User is no longer vegetarian"].op,
        items["User is no longer vegetarian"].subject,
    ) == (
        "retract",
        "diet",
    )
    assert (items["User lives in Paris"].op, items["User lives in Paris"].subject) == (
        "forget",
        "location",
    )
    assert (items["User's address"].op, items["User's address"].subject) == ("forget", "")
    assert items["User likes tea"].op == "add"  # an unknown op is a statement
    # forget and retract come first, so that a message's new value is applied after what it ends
    assert [i.op for i in found] == ["forget", "forget", "retract"] + ["add"] * 7


def test_plain_string_history_still_works_without_ids(llm_server):
    llm_server.script_chat(
        json_reply({"items": [_item("User lives in Porto", subject="location", message_id=0)]})
    )

    [item] = extract_with_llm("I live in Porto.", ["We just moved house."], now=NOW)

    assert item.message_id is None
    content = llm_server.chat_requests[0].messages[-1]["content"]
    assert "- We just moved house.\n\nLatest message [message 0]:\nI live in Porto." in content


def test_the_rules_fallback_resolves_dates_against_the_message_time(llm_server):
    llm_server.script_chat(*[chat_reply("not json") for _ in range(4)])

    items, extractor = extract(
        "I have a dentist appointment tomorrow.", [(3, "Hi")], now=NOW, message_id=4
    )

    assert extractor == "rules-fallback"
    [appointment] = items
    assert (appointment.kind, appointment.subject) == ("event", "event:dentist appointment")
    assert appointment.attributes == {"date": "2026-03-11"}
    assert appointment.text == "User has a dentist appointment on 2026-03-11"


def test_messages_an_erasure_excluded_never_reach_the_extractor(alice, llm_server):
    """A deleted fact can't come back: the message it was learned from is not sent to the model
    again, neither as context of a later message nor by itself."""
    from memories.erasure import memory_delete

    llm_server.script_chat(
        json_reply(
            {
                "items": [
                    {
                        "kind": "fact",
                        "subject": "employer",
                        "text": "User works at Initech",
                        "confidence": 0.9,
                        "pinned": False,
                    }
                ]
            }
        )
    )
    secret = _say(alice, "I work at Initech, by the way.")
    message_process(message_id=secret.pk)
    memory_delete(user=alice, memory=Memory.objects.get(user=alice))
    pending = _say(alice, "Thanks. I also sing in a choir.", conversation=secret.conversation)
    llm_server.script_chat(json_reply({"items": []}))

    message_process(message_id=pending.pk)

    later_prompt = llm_server.chat_requests[-1].messages[-1]["content"]
    assert "Initech" not in later_prompt and "choir" in later_prompt
    assert not Memory.objects.filter(user=alice).exists()


def test_an_unprocessed_message_excluded_by_an_erasure_is_not_extracted(alice, llm_server):
    message = _say(alice, "My salary is 90k at Initech.")
    Message.objects.filter(pk=message.pk).update(excluded_from_memory=True)

    assert message_process(message_id=message.pk) is False

    assert llm_server.chat_requests == []
    message.refresh_from_db()
    assert message.processed_at is not None and not Episode.objects.filter(user=alice).exists()
