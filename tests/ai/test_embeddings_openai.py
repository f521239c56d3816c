"""The OpenAI-compatible embeddings backend through the real `openai` client against the scripted
server."""

from __future__ import annotations

import math

import pytest
from django.utils import timezone

from chat.models import Message
from chat.services import conversation_start
from memories.models import Episode, Memory
from memories.pipeline import message_process
from memoryweb.ai import embeddings
from tests.ai.openai_server import (
    TOO_SLOW,
    Reply,
    delayed,
    embedding_reply,
    error_reply,
    json_reply,
)
from tests.factories import make_memory

DIMS = 384


@pytest.fixture
def embedding_server(llm_server, settings):
    settings.EMBEDDING_BACKEND = "openai"
    settings.EMBEDDING_MODEL = "test-embed"
    embeddings._embed_query_cached.cache_clear()
    yield llm_server
    embeddings._embed_query_cached.cache_clear()


def _vector(seed: int, dims: int = DIMS) -> list[float]:
    """A vector that is not unit length, with small integers (exact in float32)."""
    return [float((seed * 7 + j * (seed + 3)) % 11 - 4) for j in range(dims)]


def _unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector]


def _norm(vector: list[float]) -> float:
    return math.sqrt(sum(x * x for x in vector))


def test_it_returns_unit_vectors_from_the_endpoint_in_input_order(embedding_server):
    alpha, beta = _vector(1), _vector(2)
    assert _norm(alpha) > 2 and _norm(beta) > 2
    # The endpoint lists the data out of order; `index` says which input each vector belongs to.
    embedding_server.script_embeddings(embedding_reply([beta, alpha], indexes=[1, 0]))

    result = embeddings.embed_texts(["alpha text", "beta text"])

    assert len(result) == 2
    assert all(len(v) == DIMS for v in result)
    assert all(_norm(v) == pytest.approx(1.0) for v in result)
    assert result[0] == pytest.approx(_unit(alpha), abs=1e-6)
    assert result[1] == pytest.approx(_unit(beta), abs=1e-6)

    [request] = embedding_server.embedding_requests
    assert request.headers["authorization"] == "Bearer test-key"
    assert request.body["model"] == "test-embed"
    assert request.body["input"] == ["alpha text", "beta text"]
    assert request.body["dimensions"] == DIMS
    assert embedding_server.chat_requests == []


def test_it_sends_clipped_texts(embedding_server):
    embedding_server.script_embeddings(embedding_reply([_vector(3)]))

    embeddings.embed_texts(["x" * (embeddings.MAX_CHARS + 500)])

    assert embedding_server.embedding_requests[0].body["input"] == ["x" * embeddings.MAX_CHARS]


def test_it_caches_query_embeddings(embedding_server):
    embedding_server.script_embeddings(embedding_reply([_vector(4)]))

    first = embeddings.embed_query("what do I eat?")
    second = embeddings.embed_query("what do I eat?")

    assert first == second == pytest.approx(_unit(_vector(4)), abs=1e-6)
    assert len(embedding_server.embedding_requests) == 1


@pytest.mark.parametrize(
    "reply",
    [
        embedding_reply([_vector(5, dims=DIMS - 128)]),
        embedding_reply([_vector(5, dims=1536)]),
    ],
    ids=["too-short", "too-long"],
)
def test_it_raises_embeddingerror_on_a_wrong_size_vector(embedding_server, reply):
    embedding_server.script_embeddings(reply)

    with pytest.raises(embeddings.EmbeddingError, match="wrong number or size"):
        embeddings.embed_texts(["alpha"])


def test_it_raises_embeddingerror_on_a_wrong_number_of_vectors(embedding_server):
    embedding_server.script_embeddings(embedding_reply([_vector(6)]))

    with pytest.raises(embeddings.EmbeddingError, match="wrong number or size"):
        embeddings.embed_texts(["alpha", "beta"])


@pytest.mark.parametrize(
    "reply",
    [
        error_reply(400, "dimensions not supported", param="dimensions"),
        error_reply(500, "boom"),
        delayed(TOO_SLOW),
    ],
    ids=["http-400", "http-500", "timeout"],
)
def test_it_raises_embeddingerror_when_the_endpoint_fails(embedding_server, reply):
    embedding_server.script_embeddings(reply)

    with pytest.raises(embeddings.EmbeddingError, match="The embedding endpoint failed"):
        embeddings.embed_texts(["alpha"])


def test_it_raises_embeddingerror_when_the_endpoint_returns_no_vectors(embedding_server):
    embedding_server.script_embeddings(
        Reply(body={"object": "list", "data": [], "model": "test-embed"})
    )

    with pytest.raises(embeddings.EmbeddingError):
        embeddings.embed_texts(["alpha"])


@pytest.mark.django_db
def test_it_embeds_a_processed_message_and_its_memories_in_one_request(alice, embedding_server):
    conversation = conversation_start(user=alice)
    message = Message.objects.create(
        conversation=conversation,
        role=Message.Role.USER,
        content="I'm vegetarian.",
        created_at=timezone.now(),
    )
    item = {
        "kind": "preference",
        "subject": "diet",
        "text": "User is vegetarian",
        "confidence": 0.9,
        "pinned": False,
    }
    embedding_server.script_chat(json_reply({"items": [item]}))
    embedding_server.script_embeddings(embedding_reply([_vector(7), _vector(8)]))

    assert message_process(message_id=message.pk) is True

    [request] = embedding_server.embedding_requests
    assert request.body["input"] == ["User: I'm vegetarian.", "User is vegetarian"]
    episode = Episode.objects.get(key=f"turn:{message.pk}")
    memory = Memory.objects.get(user=alice, subject="diet")
    assert list(episode.embedding) == pytest.approx(_unit(_vector(7)), abs=1e-6)
    assert list(memory.embedding) == pytest.approx(_unit(_vector(8)), abs=1e-6)


def test_it_builds_context_from_full_text_when_the_query_cannot_be_embedded(
    embedding_server, alice, settings
):
    from memories.retrieval import build_context

    make_memory(alice, "The monolith is the old billing app", subject="term:monolith")
    embedding_server.script_embeddings(error_reply(503, "embedding service unavailable"))

    context = build_context(alice, "split the monolith")

    assert [item.text for item in context.items] == ["The monolith is the old billing app"]
