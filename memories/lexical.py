"""Okapi BM25 over a user's turn episodes, from a small in-process index, and the turns' hybrid
ranking.

Postgres full text ranks without inverse document frequency: a word said in every turn ("Caroline")
counts as much as a rare one ("Sweden"). This index weights each query word by how rare it is among
the user's own turns. It lives in the process (web or worker) and is keyed by the user's turn
episodes' count and highest id, read from the database on every search: a new turn (a higher id) is
added to it, a deleted one (a lower count) makes it rebuild, so every process answers from what the
database holds now. Turn episodes are never rewritten in place (a turn is processed once), which is
what makes count and highest id enough.

`search_turns` ranks every turn by BM25 and, when the caller gives them, its vector similarities to
the query, fused as a convex combination of the two scores (each divided by its best), each turn
also taking a share of its better neighbour's score (the answer to a question is often in the reply
next to it), and the turns of a speaker the query names counting more.
"""

from __future__ import annotations

import bisect
import math
import re
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

import numpy as np
from django.db.models import Count, Max

from memories.models import Episode
from memories.text import terms

K1 = 1.2
B = 0.75
CONTEXT_WEIGHT = (
    0.25  # a word of the turn before counts this much (a reply is about what it answers)
)
CACHED_USERS = 64  # indexes kept per process, least recently used dropped first
VECTOR_SHARE = 0.5  # of a turn's hybrid score: the rest is BM25's (both scaled to their best, 1)
NEIGHBOUR_SHARE = (
    0.25  # a turn also scores this share of its better neighbour's score (the turn before or after)
)
SPEAKER_BOOST = 1.5  # the query names who said it ("What did Caroline research?"): that person's turns count more


class TurnRow(NamedTuple):
    """What retrieval needs of a turn episode, kept in the index so that a hit needs no query."""

    pk: int
    conversation_id: int | None
    text: str
    started_at: datetime
    message_id: int | None
    speaker: str
    kind: str = Episode.Kind.TURN


@dataclass
class TurnIndex:
    """Postings of one user's turn episodes (term → document positions, term counts), their rows,
    and each conversation's turns in order."""

    ids: list[int] = field(default_factory=list)
    conversation_ids: list[int] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    postings: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)
    rows: dict[int, TurnRow] = field(default_factory=dict)
    positions: dict[int, int] = field(default_factory=dict)  # episode id → its position in ids
    # conversation → (when, id)
    timelines: dict[int, list[tuple[datetime, int]]] = field(default_factory=dict)
    speakers: set[str] = field(default_factory=set)  # everyone who said a turn
    said_by: list[str] = field(default_factory=list)  # who said each turn, by position
    max_id: int = 0
    # the positions of each turn's neighbours (-1: none), worked out again after a turn is added
    _adjacency: tuple[np.ndarray, np.ndarray] | None = field(
        default=None, repr=False, compare=False
    )

    def add(self, row: TurnRow) -> None:
        """Index a turn: its words, and at CONTEXT_WEIGHT those of the turn before it (what it
        answers)."""
        position = len(self.ids)
        timeline = self.timelines.setdefault(row.conversation_id or 0, [])
        n = bisect.bisect_left(timeline, (row.started_at, row.pk))
        counts: Counter = Counter(terms(row.text))
        if n > 0 and CONTEXT_WEIGHT:
            for term in terms(self.rows[timeline[n - 1][1]].text):
                counts[term] += CONTEXT_WEIGHT
        self.rows[row.pk] = row
        self.positions[row.pk] = position
        self.speakers.add(row.speaker)
        self.said_by.append(row.speaker)
        self.ids.append(row.pk)
        self.conversation_ids.append(row.conversation_id or 0)
        self.lengths.append(sum(counts.values()))
        for term, count in counts.items():
            docs, tfs = self.postings.setdefault(term, ([], []))
            docs.append(position)
            tfs.append(count)
        timeline.insert(n, (row.started_at, row.pk))
        self.max_id = max(self.max_id, row.pk)
        self._adjacency = None

    def search(
        self,
        query: str,
        limit: int,
        *,
        similarities: dict[int, float] | None = None,
        exclude_conversation: int | None = None,
    ) -> list[tuple[int, float]]:
        """(episode id, score) of the best `limit` turns, best first. Without `similarities`: by
        BM25. With them ({episode id: cosine similarity to the query}, for the closest turns; a turn
        not in it counts as the lowest of them): by the hybrid score, VECTOR_SHARE of the turn's
        similarity and the rest of its BM25 score, each divided by the best of its kind. Either way
        a turn also scores NEIGHBOUR_SHARE of its better neighbour's (the turn before or after it in
        its conversation): an answer sits next to its question. The turns of the speakers the query
        names score SPEAKER_BOOST times more. Turns scoring 0 are left out."""
        n = len(self.ids)
        if not n:
            return []
        scores = self.bm25(query)
        if similarities:
            by_words = self._with_neighbour(_scaled(scores))
            by_meaning = self._with_neighbour(_scaled(self._similarities(similarities)))
            scores = (1 - VECTOR_SHARE) * by_words + VECTOR_SHARE * by_meaning
        else:
            scores = self._with_neighbour(scores)
        if named := self.named_speakers(query):
            scores = scores * np.where(
                [speaker in named for speaker in self.said_by], SPEAKER_BOOST, 1.0
            )
        if exclude_conversation is not None:
            scores[np.asarray(self.conversation_ids) == exclude_conversation] = 0
        best = np.argsort(-scores, kind="stable")[:limit]
        return [(self.ids[i], float(scores[i])) for i in best if scores[i] > 0]

    def named_speakers(self, query: str) -> set[str]:
        """The speakers of the turns whom the query names, unless it names all of them (then none
        stands out)."""
        lowered = query.lower()
        names = {name for name in self.speakers if name and name.lower() != "user"}
        named = {name for name in names if re.search(rf"\b{re.escape(name.lower())}\b", lowered)}
        return named if named != names else set()

    def bm25(self, query: str) -> np.ndarray:
        """Every turn's BM25 score for `query`, by position."""
        n = len(self.ids)
        lengths = np.asarray(self.lengths, dtype=np.float32)
        norm = K1 * (1 - B + B * lengths / max(float(lengths.mean()), 1.0))
        scores = np.zeros(n, dtype=np.float32)
        for term in set(terms(query)):
            if term not in self.postings:
                continue
            docs, tfs = (np.asarray(p) for p in self.postings[term])
            idf = math.log(1 + (n - len(docs) + 0.5) / (len(docs) + 0.5))
            scores[docs] += idf * tfs * (K1 + 1) / (tfs + norm[docs])
        return scores

    def _similarities(self, similarities: dict[int, float]) -> np.ndarray:
        """By position; a turn not given (beyond the closest fetched, or without a vector) gets the
        lowest given."""
        values = np.full(len(self.ids), min(similarities.values()), dtype=np.float32)
        for episode_id, similarity in similarities.items():
            if (position := self.positions.get(episode_id)) is not None:
                values[position] = similarity
        return np.clip(values, 0, None)  # cosine's 0 is "unrelated": below it says no more

    def _with_neighbour(self, scores: np.ndarray) -> np.ndarray:
        before, after = self._adjacent_positions()
        padded = np.append(scores, 0)  # position -1 (no neighbour) reads this 0
        return scores + NEIGHBOUR_SHARE * np.maximum(padded[before], padded[after])

    def _adjacent_positions(self) -> tuple[np.ndarray, np.ndarray]:
        """For each position, the positions of the turns just before and after it in its
        conversation."""
        if self._adjacency is None:
            position = self.positions
            before = np.full(len(self.ids), -1)
            after = np.full(len(self.ids), -1)
            for timeline in self.timelines.values():
                order = [position[episode_id] for _, episode_id in timeline]
                before[order[1:]] = order[:-1]
                after[order[:-1]] = order[1:]
            self._adjacency = (before, after)
        return self._adjacency


def _scaled(scores: np.ndarray) -> np.ndarray:
    """Divided by the best (so that the best is 1), or all zero."""
    best = float(scores.max()) if len(scores) else 0.0
    return scores / best if best > 0 else np.zeros_like(scores)


# held while an index is brought up to date and searched: one thread at a time
_lock = threading.Lock()
_indexes: OrderedDict[int, tuple[tuple[int, int], TurnIndex]] = OrderedDict()


@dataclass
class Found:
    hits: list[tuple[int, float]]  # (turn episode id, score), best first
    index: TurnIndex  # the user's turns (read only, and only rows: another thread may add)

    @property
    def rows(self) -> list[TurnRow]:
        return [self.index.rows[episode_id] for episode_id, _ in self.hits]


def search_turns(
    user,
    query: str,
    limit: int,
    *,
    similarities: dict[int, float] | None = None,
    exclude_conversation: int | None = None,
) -> Found:
    """`user`'s best `limit` turns for `query`, by BM25 or, given the turns' `similarities` to the
    query, by the hybrid score (`TurnIndex.search`), with the index they were found in."""
    turns = Episode.objects.for_user(user).filter(kind=Episode.Kind.TURN)
    state = turns.aggregate(count=Count("id"), max_id=Max("id"))
    signature = (state["count"], state["max_id"] or 0)
    with _lock:
        index = _up_to_date(user.pk, turns, signature)
        hits = index.search(
            query, limit, similarities=similarities, exclude_conversation=exclude_conversation
        )
        return Found(hits, index)


def _up_to_date(user_id: int, turns, signature: tuple[int, int]) -> TurnIndex:
    """The cached index, extended by the turns added since, or rebuilt when any went away."""
    cached = _indexes.get(user_id)
    if cached is not None and cached[0] == signature:
        index = cached[1]
    else:
        index = cached[1] if cached is not None and _grew(cached[0], signature) else TurnIndex()
        _add_rows(index, turns.filter(id__gt=index.max_id))
        if len(index.ids) != signature[0]:  # rows came and went meanwhile: start over
            index = TurnIndex()
            _add_rows(index, turns)
    _indexes[user_id] = (signature, index)
    _indexes.move_to_end(user_id)
    while len(_indexes) > CACHED_USERS:
        _indexes.popitem(last=False)
    return index


def _add_rows(index: TurnIndex, turns) -> None:
    fields = ("id", "conversation_id", "text", "started_at", "messages__id", "messages__speaker")
    for episode_id, conversation_id, text, started_at, message_id, speaker in turns.order_by(
        "id"
    ).values_list(*fields):
        if episode_id not in index.rows:  # one row per turn (a turn episode has one message)
            index.add(
                TurnRow(episode_id, conversation_id, text, started_at, message_id, speaker or "")
            )


def _grew(cached: tuple[int, int], signature: tuple[int, int]) -> bool:
    """Only new turns since the cached index (none deleted): it can be extended instead of
    rebuilt."""
    return signature[0] > cached[0] and signature[1] > cached[1]


def clear() -> None:
    with _lock:
        _indexes.clear()
