"""What memory may do: consent, the memory switch, temporary chats, past chats, "don't use this"."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import ConsentRecord, User
from accounts.selectors import memory_policies, memory_policy
from accounts.services import consent_set, memory_settings_update
from chat.models import Conversation
from chat.services import chat_turn, conversation_end
from chat.tasks import delete_expired_temporary_chats
from memories.models import Episode, Memory
from memories.retrieval import build_context


def _session(user, run_on_commit, text, **kwargs):
    result = run_on_commit(chat_turn, user=user, conversation=None, text=text, **kwargs)
    run_on_commit(conversation_end, conversation=result.conversation)
    return result


def test_a_new_user_has_private_defaults(db):
    user = User.objects.create_user("newcomer", password="x")
    policy = memory_policy(user=user)
    assert not policy.extract and not policy.inject  # no consent given yet
    consent_set(user=user, purpose=ConsentRecord.Purpose.MEMORY, granted=True, method="test")
    policy = memory_policy(user=user)
    assert policy.extract and policy.inject
    assert not policy.use_past_chats and policy.sensitive_categories == frozenset()


def test_the_policy_is_one_query_of_the_newest_consents_and_the_settings(
    db, django_assert_num_queries
):
    user = User.objects.create_user("newcomer", password="x")
    for granted in (True, False, True):  # the newest record of each purpose counts
        consent_set(user=user, purpose=ConsentRecord.Purpose.MEMORY, granted=granted, method="t")
    consent_set(
        user=user, purpose=ConsentRecord.SENSITIVE_PREFIX + "health", granted=True, method="t"
    )
    consent_set(
        user=user, purpose=ConsentRecord.SENSITIVE_PREFIX + "religion", granted=True, method="t"
    )
    consent_set(
        user=user, purpose=ConsentRecord.SENSITIVE_PREFIX + "religion", granted=False, method="t"
    )
    with django_assert_num_queries(1):
        policy = memory_policy(user=user)
    assert policy.inject and not policy.use_past_chats  # no settings of their own: the defaults
    assert policy.sensitive_categories == frozenset({"health"})
    memory_settings_update(user=user, use_past_chats=True)
    assert memory_policy(user=user).use_past_chats
    memory_settings_update(user=user, memory_enabled=False)
    assert memory_policy(user=user) == memory_policy(user=User.objects.create_user("other"))
    assert not memory_policy(user=user).inject


def test_the_policies_of_many_users_are_read_in_one_query_each_their_own(
    db, django_assert_num_queries
):
    """The worker's batches read every user's policy at once: no user's consent or settings may
    leak into another's, and a user with neither gets the private defaults."""
    consenting, switched_off, silent = (User.objects.create_user(n) for n in ("c", "s", "n"))
    for user in (consenting, switched_off):
        consent_set(user=user, purpose=ConsentRecord.Purpose.MEMORY, granted=True, method="t")
    consent_set(
        user=consenting, purpose=ConsentRecord.SENSITIVE_PREFIX + "health", granted=True, method="t"
    )
    memory_settings_update(user=consenting, use_past_chats=True)
    memory_settings_update(user=switched_off, memory_enabled=False)
    ids = [consenting.pk, switched_off.pk, silent.pk]
    with django_assert_num_queries(1):
        policies = memory_policies(user_ids=ids)
    assert policies == {pk: memory_policy(user=pk) for pk in ids}
    assert policies[consenting.pk].use_past_chats
    assert policies[consenting.pk].sensitive_categories == frozenset({"health"})
    assert not policies[switched_off.pk].inject and not policies[silent.pk].inject
    assert memory_policies(user_ids=[]) == {}


def test_without_consent_nothing_is_extracted(db, run_on_commit):
    user = User.objects.create_user("newcomer", password="x")
    result = _session(user, run_on_commit, "Remember that I'm vegetarian.")
    result.user_message.refresh_from_db()
    assert result.user_message.processed_at is not None  # handled, so the sweep won't retry it
    assert (
        not Memory.objects.filter(user=user).exists()
        and not Episode.objects.filter(user=user).exists()
    )


def test_withdrawn_consent_stops_extraction_and_injection_at_once(alice, run_on_commit):
    _session(alice, run_on_commit, "Remember that I'm vegetarian.")
    consent_set(
        user=alice, purpose=ConsentRecord.Purpose.MEMORY, granted=False, method="consent page"
    )

    result = _session(alice, run_on_commit, "I live in Lisbon. What should I cook?")

    assert result.context.items == [] and not result.reply.recalls.exists()
    assert not any("Lisbon" in m.text for m in Memory.objects.filter(user=alice))
    assert "vegetarian" not in result.reply.content


def test_switching_memory_off_stops_it(alice, run_on_commit):
    _session(alice, run_on_commit, "Remember that I'm vegetarian.")
    memory_settings_update(user=alice, memory_enabled=False)

    result = _session(alice, run_on_commit, "I live in Lisbon. Dinner ideas?")

    assert result.context.items == []
    assert Memory.objects.filter(user=alice).count() == 1


def test_a_temporary_chat_neither_reads_nor_writes_memory(alice, run_on_commit):
    _session(alice, run_on_commit, "Remember that I'm vegetarian.")
    before = (Memory.objects.count(), Episode.objects.count())

    result = _session(alice, run_on_commit, "I live in Lisbon. Dinner ideas?", temporary=True)

    assert result.conversation.temporary
    assert result.context.items == []
    assert (Memory.objects.count(), Episode.objects.count()) == before


def test_temporary_chats_are_deleted_after_the_set_time(alice, run_on_commit):
    memory_settings_update(user=alice, temporary_chat_hours=2)
    old = _session(alice, run_on_commit, "secret plans", temporary=True).conversation
    fresh = _session(alice, run_on_commit, "more secret plans", temporary=True).conversation
    kept = _session(alice, run_on_commit, "normal chat").conversation
    Conversation.objects.filter(pk__in=[old.pk, kept.pk]).update(
        last_activity_at=timezone.now() - timedelta(hours=3)
    )

    assert delete_expired_temporary_chats() == 1

    assert set(Conversation.objects.filter(user=alice).values_list("pk", flat=True)) == {
        fresh.pk,
        kept.pk,
    }


def test_past_chats_are_recalled_only_when_turned_on(alice, run_on_commit):
    # a turn that teaches no saved memory: only past chats can recall it
    _session(alice, run_on_commit, "What a sunset over the harbour tonight, pink and gold.")
    assert not Memory.objects.filter(user=alice).exists()
    memory_settings_update(user=alice, use_past_chats=False)

    assert build_context(alice, "that harbour sunset").items == []

    memory_settings_update(user=alice, use_past_chats=True)
    assert build_context(alice, "that harbour sunset").items


@pytest.mark.parametrize("use_in_context", [True, False])
def test_dont_use_this_keeps_a_memory_out_of_context(alice, run_on_commit, use_in_context):
    _session(alice, run_on_commit, "Remember that I'm vegetarian.")
    Memory.objects.filter(user=alice).update(use_in_context=use_in_context)

    texts = [item.text for item in build_context(alice, "dinner ideas").items]

    assert ("User is vegetarian" in texts) is use_in_context


def test_consent_withdrawn_while_the_worker_runs_stops_its_writes(alice, monkeypatch):
    """The policy is checked again under the lock, after the slow extraction."""
    import memories.pipeline as services

    message = chat_turn(
        user=alice, conversation=None, text="Remember that I'm vegetarian."
    ).user_message
    real_extract = services.extract

    def extract_then_withdraw(*args, **kwargs):
        result = real_extract(*args, **kwargs)
        consent_set(
            user=alice, purpose=ConsentRecord.Purpose.MEMORY, granted=False, method="consent page"
        )
        return result

    monkeypatch.setattr(services, "extract", extract_then_withdraw)

    assert services.message_process(message_id=message.pk) is True
    assert (
        not Memory.objects.filter(user=alice).exists()
        and not Episode.objects.filter(user=alice).exists()
    )
