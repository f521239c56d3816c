"""The LoCoMo evaluation harness: data normalisation, scoring, BM25, and a tiny end-to-end run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from accounts.models import User
from chat.models import Message
from memories.evaluation import locomo
from memories.evaluation.baselines import BM25, rrf, tokenize
from memories.evaluation.ingest import USERNAME_PREFIX
from memories.evaluation.scoring import (
    QuestionResult,
    first_appearance,
    percentile,
    recall_at_k,
    summarise,
)
from memoryweb import database

SHARED_DEV_SET = (
    Path(__file__).resolve().parents[2].parent / "shared" / "data" / "locomo" / "locomo_dev.json"
)


# --- the data set ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["D1:3"], ["D1:3"]),
        (["D8:6; D9:17"], ["D8:6", "D9:17"]),
        (["D9:1 D4:4 D4:6"], ["D9:1", "D4:4", "D4:6"]),
        (["D:11:26"], ["D11:26"]),
        (["D30:05"], ["D30:5"]),
        ([" D2:1 ", "d2:1", "D2:01"], ["D2:1"]),
        ("D1:1, D1:2", ["D1:1", "D1:2"]),
        ([], []),
        (None, []),
    ],
)
def test_evidence_ids_are_normalised(raw, expected):
    assert locomo.normalise_evidence(raw) == expected


def test_evidence_ids_missing_from_the_conversation_are_dropped_and_counted():
    qa = [{"question": "Q?", "evidence": ["D1:1; D7:7", "D:1:2"], "category": 1}]
    sample = locomo.parse_sample(_conversation(qa))
    question = sample.questions[0]
    assert question.evidence == ["D1:1", "D1:2"]
    assert question.invalid_evidence == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1:56 pm on 8 May, 2023", datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
        ("12:40 am on 27 March, 2022", datetime(2022, 3, 27, 0, 40, tzinfo=UTC)),
        ("11:01 AM on 17 December,2022", datetime(2022, 12, 17, 11, 1, tzinfo=UTC)),
    ],
)
def test_session_dates_are_parsed(text, expected):
    assert locomo.parse_session_date(text) == expected


def test_an_unreadable_session_date_is_refused():
    with pytest.raises(ValueError, match="unreadable session date"):
        locomo.parse_session_date("sometime in spring")


def test_a_shared_photo_is_described_by_its_caption():
    assert (
        locomo.turn_content("Look!", "a dog on a beach")
        == "Look! [shares a photo: a dog on a beach]"
    )
    assert locomo.turn_content("Look!", None) == "Look!"


# --- scoring and baselines ------------------------------------------------------------------------


def test_recall_at_k_is_the_share_of_evidence_in_the_first_k():
    ranked = ["D1:1", "D1:2", "D1:3", "D2:1"]
    assert recall_at_k(ranked, ["D1:2"], 1) == 0.0
    assert recall_at_k(ranked, ["D1:2"], 2) == 1.0
    assert recall_at_k(ranked, ["D1:1", "D2:1"], 3) == 0.5
    assert recall_at_k(ranked, ["D1:1", "D2:1"], 10) == 1.0
    assert recall_at_k([], ["D1:1"], 5) == 0.0
    with pytest.raises(ValueError):
        recall_at_k(ranked, [], 5)


def test_recall_is_averaged_per_question_and_by_category():
    results = [
        QuestionResult(1, ["a", "b"], {"s": ["a", "x"]}),  # 0.5 at k=2
        QuestionResult(1, ["c"], {"s": ["c"]}),  # 1.0
        QuestionResult(4, ["d"], {"s": ["x", "y", "d"]}),  # 0.0 at k=2, 1.0 at k=3
    ]
    summary = summarise(results, "s", [2, 3])
    assert summary["questions"] == 3
    assert summary["recall@2"] == pytest.approx(0.5)
    assert summary["recall@3"] == pytest.approx(2.5 / 3, abs=1e-4)
    assert summary["by_category"]["1"] == {"questions": 2, "recall@2": 0.75, "recall@3": 0.75}
    assert summary["by_category"]["4"]["recall@2"] == 0.0


def test_source_messages_keep_their_first_appearance_order():
    assert first_appearance(["b", "a", "b", "c", "a"]) == ["b", "a", "c"]


def test_percentiles_interpolate():
    assert percentile([1, 2, 3, 4, 5], 50) == 3
    assert percentile([10, 20], 50) == 15
    assert percentile(list(range(1, 101)), 95) == pytest.approx(95.05)


def test_tokenize_lowercases_and_drops_stop_words():
    assert tokenize("What did Caroline do at the LGBTQ support group?") == [
        "caroline",
        "lgbtq",
        "support",
        "group",
    ]


def test_bm25_ranks_the_matching_documents_first():
    corpus = [
        "Melanie painted a sunrise over the lake.",
        "Caroline went to an LGBTQ support group yesterday.",
        "The kids and I went camping in the mountains.",
        "Caroline is researching adoption agencies; adoption is a big step.",
    ]
    bm25 = BM25(corpus)
    assert bm25.rank("When did Caroline go to the support group?")[0] == 1
    assert bm25.rank("adoption agencies")[0] == 3
    assert bm25.rank("Who painted the sunrise?") == [0]
    assert bm25.rank("the and of") == []  # stop words only: nothing matches
    scores = bm25.scores("Caroline")
    assert scores[1] > scores[3] > 0  # same term frequency: the shorter document wins
    assert scores[0] == scores[2] == 0


def test_rrf_fuses_rankings():
    # 1 and 3: 1/61 + 1/63 = 0.03227 > 2: 2/62 = 0.03226; ties go to the lower index.
    assert rrf([[1, 2, 3], [3, 2, 1]]) == [1, 3, 2]
    assert rrf([[0, 1], [0, 2]])[0] == 0
    assert set(rrf([[0], [5]])) == {0, 5}


# --- the command, end to end ----------------------------------------------------------------------


def _conversation(qa: list[dict]) -> dict:
    return {
        "sample_id": "toy-1",
        "conversation": {
            "speaker_a": "Alice",
            "speaker_b": "Bob",
            "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_1": [
                {
                    "speaker": "Alice",
                    "dia_id": "D1:1",
                    "text": "I adopted a golden retriever puppy named Biscuit.",
                },
                {
                    "speaker": "Bob",
                    "dia_id": "D1:2",
                    "text": "Lovely! I started pottery classes on Tuesdays.",
                },
                {
                    "speaker": "Alice",
                    "dia_id": "D1:3",
                    "text": "Biscuit loves the park.",
                    "img_url": ["https://example.com/dog.jpg"],
                    "blip_caption": "a photo of a dog chasing a tennis ball",
                },
            ],
            "session_2_date_time": "7:55 pm on 9 June, 2023",
            "session_2": [
                {
                    "speaker": "Bob",
                    "dia_id": "D2:1",
                    "text": "I finished my first pottery bowl, blue and wobbly.",
                },
                {
                    "speaker": "Alice",
                    "dia_id": "D2:2",
                    "text": "I'm training for the Berlin marathon in September.",
                },
                {"speaker": "Bob", "dia_id": "D2:3", "text": "Good luck, I will cheer for you!"},
            ],
        },
        "observation": {"ignored": "never read"},
        "session_summary": {"ignored": "never read"},
        "qa": qa,
    }


TOY_QA = [
    {
        "question": "What is the name of Alice's golden retriever puppy?",
        "answer": "Biscuit",
        "evidence": ["D1:1"],
        "category": 4,
    },
    {
        "question": "When is Alice running the Berlin marathon?",
        "answer": "September 2023",
        "evidence": ["D:2:2", "D9:9"],
        "category": 2,
    },
    {
        "question": "What hobbies does Bob have?",
        "answer": "pottery",
        "evidence": ["D1:2; D2:1"],
        "category": 1,
    },
    {
        "question": "What is Bob's puppy called?",
        "adversarial_answer": "Biscuit",
        "evidence": ["D1:1"],
        "category": 5,
    },
]


@pytest.fixture
def toy_dataset(tmp_path) -> Path:
    path = tmp_path / "locomo_toy.json"
    path.write_text(json.dumps([_conversation(TOY_QA)]), encoding="utf-8")
    return path


def test_the_command_scores_a_tiny_dataset_and_deletes_its_users(db, toy_dataset, tmp_path, capsys):
    out = tmp_path / "report.json"

    call_command(
        "evaluate_memory", "--dataset", "locomo", "--input", str(toy_dataset), "--k", "5", "10", "20",
        "--baseline", "bm25", "dense", "rrf", "--json", str(out),
    )  # fmt: skip

    report = json.loads(out.read_text())
    assert {
        "questions", "recall@5", "recall@10", "recall@20", "by_category", "context_ms", "ingest_turns_per_s",
        "context_tokens_mean", "baselines", "dataset", "conversations", "invalid_evidence_ids",
    } <= set(report)  # fmt: skip
    assert report["questions"] == 3  # the adversarial (category 5) question is not scored
    assert report["conversations"] == 1
    assert report["turns"] == 6
    assert report["turns_without_episode"] == 0
    assert report["asked_at"] == "end"
    assert report["invalid_evidence_ids"] == 1  # D9:9
    assert report["dataset"] == str(toy_dataset)
    assert set(report["by_category"]) == {"1", "2", "4"}
    assert set(report["context_ms"]) == {"p50", "p95"}
    assert report["context_ms"]["p95"] >= report["context_ms"]["p50"] > 0
    assert report["ingest_turns_per_s"] > 0
    assert report["context_tokens_mean"] > 0
    assert set(report["baselines"]) == {"bm25", "dense", "rrf"}
    for summary in [report, *report["baselines"].values()]:
        for k in (5, 10, 20):
            assert 0.0 <= summary[f"recall@{k}"] <= 1.0
            for category in summary["by_category"].values():
                assert 0.0 <= category[f"recall@{k}"] <= 1.0
    # The puppy's name is said once, in words the question repeats: every system finds it.
    assert report["by_category"]["4"]["recall@5"] == 1.0
    assert report["baselines"]["bm25"]["by_category"]["4"]["recall@5"] == 1.0
    # The benchmark's users and all their data are gone.
    assert not User.objects.filter(username__startswith=USERNAME_PREFIX).exists()
    assert not Message.objects.filter(external_id="D1:1").exists()
    printed = capsys.readouterr().out
    assert "memoryweb" in printed and "bm25" in printed and "4 single-hop" in printed


def test_the_command_keeps_its_users_when_asked(db, toy_dataset):
    call_command("evaluate_memory", "--input", str(toy_dataset), "--keep-users", "--k", "5")

    user = User.objects.get(username__startswith=USERNAME_PREFIX + "toy-1-")
    messages = Message.objects.filter(conversation__user=user).order_by("created_at")
    assert [m.external_id for m in messages] == ["D1:1", "D1:2", "D1:3", "D2:1", "D2:2", "D2:3"]
    assert all(m.processed_at is not None and m.role == Message.Role.USER for m in messages)
    assert (
        messages[2].content
        == "Biscuit loves the park. [shares a photo: a photo of a dog chasing a tennis ball]"
    )
    assert messages[0].speaker == "Alice"
    assert messages[0].created_at == datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    conversations = user.conversations.order_by("created_at")
    assert [c.created_at.date().isoformat() for c in conversations] == ["2023-05-08", "2023-06-09"]
    assert all(c.ended_at is not None and c.finalized_at is not None for c in conversations)
    assert user.episodes.filter(kind="turn").count() == 6


def test_kept_users_are_asked_again_without_ingesting(db, toy_dataset, tmp_path):
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    call_command(
        "evaluate_memory", "--input", str(toy_dataset), "--keep-users", "--json", str(first)
    )
    user = User.objects.get(username__startswith=USERNAME_PREFIX + "toy-1-")

    call_command(
        "evaluate_memory", "--input", str(toy_dataset), "--reuse-users", "--json", str(second)
    )

    kept, reused = json.loads(first.read_text()), json.loads(second.read_text())
    assert (kept["reused_users"], kept["ingested_turns"]) == (0, 6)
    assert (reused["reused_users"], reused["ingested_turns"], reused["ingest_turns_per_s"]) == (
        1,
        0,
        None,
    )
    assert reused["turns"] == 6 and reused["by_category"] == kept["by_category"]
    # asked again, still kept
    assert list(User.objects.filter(username__startswith=USERNAME_PREFIX)) == [user]


def test_a_kept_user_missing_turns_is_not_reused(db, toy_dataset, tmp_path):
    call_command("evaluate_memory", "--input", str(toy_dataset), "--keep-users")
    Message.objects.filter(external_id="D2:3").delete()  # as if that run had stopped halfway
    report = tmp_path / "report.json"

    call_command(
        "evaluate_memory", "--input", str(toy_dataset), "--reuse-users", "--json", str(report)
    )

    assert json.loads(report.read_text())["reused_users"] == 0
    # ingested anew, kept
    assert User.objects.filter(username__startswith=USERNAME_PREFIX).count() == 2


def test_a_missing_input_file_is_a_clear_error(db, tmp_path):
    with pytest.raises(CommandError, match="No data set at"):
        call_command("evaluate_memory", "--input", str(tmp_path / "absent.json"))


def test_a_file_that_is_not_locomo_is_refused(db, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"not": "a list"}', encoding="utf-8")
    with pytest.raises(CommandError, match="no list of conversations"):
        call_command("evaluate_memory", "--input", str(path))


def test_the_shared_dev_set_reads_and_normalises():
    if not SHARED_DEV_SET.is_file():
        pytest.skip(
            f"the LoCoMo dev set is not at {SHARED_DEV_SET} (it lives outside the repository)"
        )
    samples = locomo.load(SHARED_DEV_SET)
    assert len(samples) == 5
    assert all(s.sessions and all(t.content for t in s.turns) for s in samples)
    questions = [q for s in samples for q in s.questions if q.category in locomo.SCORED_CATEGORIES]
    assert sum(q.invalid_evidence for q in questions) <= 5


@pytest.mark.skipif(
    not settings.EMBEDDED_DATABASE, reason="a new data folder means a new embedded database"
)
def test_the_command_runs_in_a_new_data_folder(toy_dataset, tmp_path):
    """As bench/README.md tells a newcomer: `.data/bench` is new, with no tables yet."""
    env = {**os.environ, "MEMORYWEB_DATA_DIR": str(tmp_path / "data")}
    env.pop("DATABASE_URL", None)
    try:
        run = subprocess.run(
            [sys.executable, "manage.py", "evaluate_memory", "--input", str(toy_dataset)],
            cwd=settings.BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        database.stop_embedded_server(tmp_path / "data")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "4 single-hop" in run.stdout
