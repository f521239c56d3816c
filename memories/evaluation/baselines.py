"""Baselines ranked over the same turns the system ingested: Okapi BM25, dense cosine (MiniLM), and
their RRF.

Each ranks one conversation's turns (as the episode text "Speaker: content") for a question.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

from memories.text import STOP_WORDS  # the same function words as the product's BM25
from memoryweb.ai.embeddings import embed_texts

BASELINES = ("bm25", "dense", "rrf")
RRF_K = 60
EMBED_BATCH = 128

_WORD = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    """Lowercase words of letters and digits, English stop words removed."""
    return [w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]


class BM25:
    """Okapi BM25 over a fixed list of documents; idf = ln(1 + (N - n + 0.5) / (n + 0.5)), never
    negative."""

    def __init__(self, documents: Sequence[str], *, k1: float = 1.5, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.term_counts = [Counter(tokenize(d)) for d in documents]
        self.lengths = [sum(c.values()) for c in self.term_counts]
        self.average_length = (sum(self.lengths) / len(self.lengths)) if self.lengths else 0.0
        frequencies = Counter(term for counts in self.term_counts for term in counts)
        n = len(documents)
        self.idf = {
            term: math.log(1 + (n - df + 0.5) / (df + 0.5)) for term, df in frequencies.items()
        }

    def scores(self, query: str) -> list[float]:
        terms = [t for t in tokenize(query) if t in self.idf]
        pairs = zip(self.term_counts, self.lengths, strict=True)
        return [self._score(counts, length, terms) for counts, length in pairs]

    def _score(self, counts: Counter, length: int, terms: list[str]) -> float:
        norm = self.k1 * (1 - self.b + self.b * length / (self.average_length or 1.0))
        return sum(
            self.idf[t] * counts[t] * (self.k1 + 1) / (counts[t] + norm) for t in terms if counts[t]
        )

    def rank(self, query: str) -> list[int]:
        """Indexes of the documents that share a term with the query, best first (ties: document
        order)."""
        scores = self.scores(query)
        return sorted((i for i, s in enumerate(scores) if s > 0), key=lambda i: (-scores[i], i))


def embed_all(texts: Sequence[str]) -> np.ndarray:
    """Unit vectors of `texts`, one row each, embedded in batches."""
    rows: list[list[float]] = []
    for start in range(0, len(texts), EMBED_BATCH):
        rows += embed_texts(list(texts[start : start + EMBED_BATCH]))
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), -1)


def dense_rank(document_vectors: np.ndarray, query_vector: np.ndarray) -> list[int]:
    """Indexes of all documents by cosine similarity to the query (vectors are unit length), best
    first."""
    similarities = document_vectors @ query_vector
    return [int(i) for i in np.argsort(-similarities, kind="stable")]


def rrf(rankings: Sequence[Sequence[int]], k: int = RRF_K) -> list[int]:
    """Reciprocal-rank fusion: score(d) = Σ 1 / (k + rank of d), rank from 1; best first."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, doc in enumerate(ranking, start=1):
            scores[doc] = scores.get(doc, 0.0) + 1.0 / (k + rank)
    return sorted(scores, key=lambda d: (-scores[d], d))


class TurnIndex:
    """One conversation's turns, indexed for every baseline; `rank` gives dia_ids best first."""

    def __init__(self, dia_ids: Sequence[str], texts: Sequence[str], *, dense: bool) -> None:
        self.dia_ids = list(dia_ids)
        self.bm25 = BM25(texts)
        self.vectors = embed_all(texts) if dense else None

    def rankings(
        self, question: str, query_vector: np.ndarray | None, systems: Sequence[str]
    ) -> dict[str, list[str]]:
        ranked: dict[str, list[int]] = {}
        if {"bm25", "rrf"} & set(systems):
            ranked["bm25"] = self.bm25.rank(question)
        if {"dense", "rrf"} & set(systems):
            ranked["dense"] = dense_rank(self.vectors, query_vector)
        if "rrf" in systems:
            ranked["rrf"] = rrf([ranked["bm25"], ranked["dense"]])
        return {name: [self.dia_ids[i] for i in ranked[name]] for name in systems}
