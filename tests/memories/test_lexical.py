"""BM25 over turn episodes (memories.lexical), and what retrieval does with turns: neighbours,
speakers, contextual embeddings."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from chat.models import Message
from chat.services import conversation_start
from memories import lexical
from memories import text as english
from memories.episodes import turn_embedding_text
from memories.models import Episode
from memories.pipeline import message_process
from memories.retrieval import build_context
from tests.factories import make_turn


@pytest.fixture(autouse=True)
def _fresh_indexes():
    lexical.clear()
    yield
    lexical.clear()


def _turns(user, lines: list[tuple[str, str]], *, embed: bool = False) -> list[Episode]:
    """One conversation of turns ("speaker", "text") 30 s apart, each with its turn episode."""
    conversation = conversation_start(user=user)
    start = timezone.now() - timedelta(days=3)
    return [
        make_turn(
            user,
            conversation,
            text,
            when=start + timedelta(seconds=30 * n),
            speaker=speaker,
            embed=embed,
        )
        for n, (speaker, text) in enumerate(lines)
    ]


def test_terms_drop_function_words_and_are_stemmed():
    assert english.terms("What paintings did Melanie's kids like?") == [
        "paint",
        "melanie",
        "kid",
        "like",
    ]


@pytest.mark.parametrize(
    "words, stem",
    [
        (["paint", "paints", "painted", "painting"], "paint"),
        (["hike", "hikes", "hiked", "hiking"], "hike"),
        (["run", "running"], "run"),
        (["family", "families"], "famili"),
        (["class", "classes"], "class"),
        (["agreed", "agree"], "agree"),
        (["conflated", "conflate"], "conflate"),
    ],
)
def test_the_forms_of_a_word_share_a_stem(words, stem):
    assert {english.stem(word) for word in words} == {stem}


def test_a_question_finds_a_turn_with_another_form_of_its_words():
    when = timezone.now()
    index = lexical.TurnIndex()
    index.add(lexical.TurnRow(1, 7, "Ann: I painted that lake sunrise last year!", when, 11, "Ann"))
    index.add(lexical.TurnRow(2, 8, "Ann: The lake was cold.", when + timedelta(days=1), 12, "Ann"))

    assert [episode_id for episode_id, _ in index.search("When did Ann paint a sunrise?", 2)][
        0
    ] == 1


def test_a_reply_is_found_by_the_words_of_what_it_answers():
    when = timezone.now()
    index = lexical.TurnIndex()
    index.add(lexical.TurnRow(1, 7, "Bea: What did you paint last week?", when, 11, "Bea"))
    index.add(
        lexical.TurnRow(
            2, 7, "Ann: A sunrise over the lake.", when + timedelta(seconds=30), 12, "Ann"
        )
    )
    index.add(
        lexical.TurnRow(
            3, 8, "Ann: I like the lake in winter.", when + timedelta(days=1), 13, "Ann"
        )
    )

    ranked = [episode_id for episode_id, _ in index.search("paint by the lake", 3)]

    assert ranked[0] == 2  # its own "lake" and, at CONTEXT_WEIGHT, the question's "paint"


def test_the_turn_next_to_a_match_is_found_by_its_neighbour_s_score():
    when = timezone.now()
    index = lexical.TurnIndex()
    index.add(lexical.TurnRow(1, 7, "Bea: Where did you go last summer?", when, 11, "Bea"))
    index.add(
        lexical.TurnRow(
            2, 7, "Ann: Camping in the Rockies.", when + timedelta(seconds=30), 12, "Ann"
        )
    )
    index.add(lexical.TurnRow(3, 8, "Ann: I like winter.", when + timedelta(days=1), 13, "Ann"))

    scores = dict(index.search("Rockies camping", 3))

    assert set(scores) == {1, 2}  # 1 shares no word with the query: it asked what 2 answers
    assert scores[1] == pytest.approx(lexical.NEIGHBOUR_SHARE * scores[2])


def _hybrid_index() -> lexical.TurnIndex:
    """Conversation 7: a question, its answer, a remark; conversation 8: one unrelated turn."""
    when = timezone.now()
    index = lexical.TurnIndex()
    index.add(lexical.TurnRow(1, 7, "Bea: Which instrument are you learning?", when, 11, "Bea"))
    index.add(
        lexical.TurnRow(
            2, 7, "Ann: The cello, since March.", when + timedelta(seconds=30), 12, "Ann"
        )
    )
    index.add(lexical.TurnRow(3, 7, "Bea: Cool!", when + timedelta(seconds=60), 13, "Bea"))
    index.add(
        lexical.TurnRow(4, 8, "Ann: Cool weather today.", when + timedelta(days=1), 14, "Ann")
    )
    return index


def test_with_similarities_a_turn_is_found_by_meaning_alone():
    index = _hybrid_index()

    ranked = index.search(
        "What music do you play?", 4, similarities={2: 0.6, 1: 0.5, 3: 0.1, 4: 0.1}
    )

    assert index.search("What music do you play?", 4) == []  # no word in common
    assert [episode_id for episode_id, _ in ranked][:2] == [2, 1]


def test_a_turn_takes_a_share_of_its_better_neighbour_s_score():
    index = _hybrid_index()

    scores = dict(index.search("music", 4, similarities={2: 0.8, 1: 0.2, 3: 0.2, 4: 0.2}))

    # 1, 3 and 4 are as far in meaning; 1 and 3 are next to the closest turn, 2 (scaled to 1)
    share = lexical.NEIGHBOUR_SHARE * lexical.VECTOR_SHARE
    assert scores[1] == scores[3] == pytest.approx(scores[4] + share * 1.0)


def test_turns_without_a_similarity_count_as_the_least_similar_given():
    index = _hybrid_index()

    scores = dict(index.search("weather", 4, similarities={4: 0.2, 1: 0.2}))

    # neither given: both at the lowest, 0.2
    assert scores[2] == pytest.approx(scores[3]) and scores[2] > 0


def test_the_turns_of_a_named_speaker_count_more_before_the_cut():
    when = timezone.now()
    index = lexical.TurnIndex()
    # Ann's turns say "camping" twice: more BM25
    for n, speaker in enumerate(["Ann", "Ann", "Bea"]):
        # no name in the words here
        text = "I went camping" + (" camping" if speaker == "Ann" else "")
        index.add(lexical.TurnRow(n + 1, 7 + n, text, when + timedelta(days=n), 11 + n, speaker))

    assert [pk for pk, _ in index.search("Where did Bea go camping?", 1)] == [3]
    assert index.search("Where did Bea go camping?", 3)[0][1] == pytest.approx(
        lexical.SPEAKER_BOOST * dict(index.search("Where did someone go camping?", 3))[3]
    )
    # both named: neither stands out
    assert index.named_speakers("Did Ann or Bea go camping?") == set()


def test_a_rare_word_outweighs_a_common_one(alice):
    lines = [("Ann", f"I went to the park on day {n}") for n in range(8)] + [
        ("Ann", "I moved here from Sweden")
    ]
    episodes = _turns(alice, lines)

    hits = lexical.search_turns(alice, "park or Sweden?", 3).hits

    assert hits[0][0] == episodes[-1].pk  # "sweden" is in one turn, "park" in eight
    assert all(score > 0 for _, score in hits)


def test_the_index_follows_new_and_deleted_turns(alice, bob):
    [first] = _turns(alice, [("Ann", "The violin lesson is on Monday")])
    assert [pk for pk, _ in lexical.search_turns(alice, "violin", 5).hits] == [first.pk]

    [second] = _turns(alice, [("Ann", "I sold my old violin")])
    assert {pk for pk, _ in lexical.search_turns(alice, "violin", 5).hits} == {first.pk, second.pk}

    first.delete()
    assert [pk for pk, _ in lexical.search_turns(alice, "violin", 5).hits] == [second.pk]
    assert lexical.search_turns(bob, "violin", 5).hits == []  # per user


def test_a_conversation_can_be_left_out(alice):
    [turn] = _turns(alice, [("Ann", "The violin lesson is on Monday")])

    assert (
        lexical.search_turns(alice, "violin", 5, exclude_conversation=turn.conversation_id).hits
        == []
    )


def test_the_reply_next_to_a_found_turn_joins_the_context(alice):
    question, answer, _ = _turns(
        alice,
        [
            ("Bea", "What did you paint for the art show last month?"),
            ("Ann", "A sunrise over the lake, in oranges and pinks."),
            ("Bea", "Lovely!"),
        ],
    )

    texts = [item.text for item in build_context(alice, "art show painting").items]

    assert question.text in texts and answer.text in texts


def test_a_named_speaker_s_turns_come_first(alice):
    _turns(
        alice,
        [
            ("Ann", "I went camping at the beach"),
            ("Bea", "I went camping at the lake"),
            ("Cal", "Nice, I love it"),
        ],
        embed=True,
    )

    items = [
        i for i in build_context(alice, "Where did Bea go camping?").items if i.type == "episode"
    ]

    assert items[0].text == "Bea: I went camping at the lake"


def test_a_turn_is_embedded_with_the_message_it_answers(alice):
    conversation = conversation_start(user=alice)
    now = timezone.now()
    asked = Message.objects.create(
        conversation=conversation,
        role="user",
        speaker="Bea",
        content="What did you paint?",
        created_at=now,
    )
    later = now + timedelta(seconds=1)
    reply = Message.objects.create(
        conversation=conversation,
        role="user",
        speaker="Ann",
        content="A sunrise!",
        created_at=later,
    )

    assert (
        turn_embedding_text(reply, asked)
        == "Ann: A sunrise!\n(In reply to Bea: What did you paint?)"
    )
    message_process(message_id=reply.pk)
    episode = Episode.objects.get(key=f"turn:{reply.pk}")
    assert episode.text == "Ann: A sunrise!" and list(episode.messages.all()) == [reply]


def test_build_context_ranks_turns_by_words_and_meaning_together(alice, monkeypatch):
    music, weather = _turns(
        alice,
        [("Ann", "I started cello lessons in March"), ("Ann", "Rainy weather today")],
        embed=True,
    )
    seen = {}
    search_turns = lexical.search_turns

    def spy(user, query, limit, **kwargs):
        seen.update(kwargs["similarities"])
        return search_turns(user, query, limit, **kwargs)

    monkeypatch.setattr(lexical, "search_turns", spy)
    items = build_context(alice, "Which instrument does Ann play?").items

    assert set(seen) == {music.pk, weather.pk} and seen[music.pk] > seen[weather.pk]
    assert items[0].id == music.pk
