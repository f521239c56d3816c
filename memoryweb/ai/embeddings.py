"""Text embeddings: the local all-MiniLM-L6-v2 shipped in a package (`memoryweb.ai.local_model`),
or an OpenAI-compatible endpoint asked for vectors of the columns' size. Vectors are unit length,
so cosine distance in pgvector ranks them."""

from __future__ import annotations

import logging
import math
import threading
from functools import lru_cache

from django.conf import settings

from memoryweb.ai.local_model import load_encoder

logger = logging.getLogger(__name__)

MAX_CHARS = 2000  # MiniLM reads 256 word pieces; longer text only costs time
# The model's own batches within one call: it sorts the texts by length and pads each batch to its
# longest. On one CPU thread larger batches gain nothing from larger matrices: LoCoMo turns in
# batches of 4 embed 1.36x faster than in batches of 16, and 2.2x faster than in 32 (ONNX Runtime;
# torch 1.28x against 16; docs/benchmarks.md).
LOCAL_BATCH = 4
_lock = threading.Lock()
_local_model = None


class EmbeddingError(Exception):
    pass


def embed_texts(texts: list[str]) -> list[list[float]]:
    """Embed several texts at once (one batch); same order as given."""
    if not texts:
        return []
    clipped = [t[:MAX_CHARS] for t in texts]
    if settings.EMBEDDING_BACKEND == "openai":
        return _embed_openai(clipped)
    return _embed_local(clipped)


def embed_query(text: str) -> list[float]:
    return list(_embed_query_cached(settings.EMBEDDING_BACKEND, text[:MAX_CHARS]))


@lru_cache(maxsize=256)
def _embed_query_cached(backend: str, text: str) -> tuple[float, ...]:
    return tuple(embed_texts([text])[0])


def local_model():
    """The local model's encoder (`memoryweb.ai.local_model`), loaded once per process."""
    global _local_model
    if _local_model is None:
        with _lock:
            if _local_model is None:
                _local_model = load_encoder()
    return _local_model


def _embed_local(texts: list[str]) -> list[list[float]]:
    """One CPU thread per call (EMBEDDING_THREADS): a sentence or a turn is too small to split
    across cores, and on 2 loaded cores a short query took 0.8 s with 2 threads, 30 ms with 1."""
    return [v.tolist() for v in local_model().encode(texts, LOCAL_BATCH)]


def _embed_openai(texts: list[str]) -> list[list[float]]:
    import openai

    from memoryweb.ai import llm  # only for the openai backend: its client and settings

    try:
        response = llm.client().embeddings.create(
            model=settings.EMBEDDING_MODEL, input=texts, dimensions=settings.EMBEDDING_DIMENSIONS
        )
    # ValueError: no or unreadable data
    except (
        openai.OpenAIError,
        llm.LLMError,
        ValueError,
    ) as exc:
        raise EmbeddingError(f"The embedding endpoint failed: {type(exc).__name__}") from exc
    vectors = [item.embedding for item in sorted(response.data, key=lambda d: d.index)]
    if len(vectors) != len(texts) or any(len(v) != settings.EMBEDDING_DIMENSIONS for v in vectors):
        raise EmbeddingError("The embedding endpoint returned vectors of the wrong number or size.")
    return [_normalise(v) for v in vectors]


def _normalise(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


def warm_up() -> None:
    """Load the local model now (about 10 s), so that the first request or task doesn't wait for
    it."""
    if settings.EMBEDDING_BACKEND == "local":
        embed_query("warm up")
