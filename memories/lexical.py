"""Okapi BM25 over a user's turn episodes, kept in PostgreSQL, and the turns' hybrid ranking in one
SQL statement.

Postgres full text ranks without inverse document frequency: a word said in every turn ("Caroline")
counts as much as a rare one ("Sweden"). So each turn episode stores its BM25 term weights as a
pgvector `sparsevec` (`Episode.lexical`, written with the turn), and `TurnTerm` holds, per user,
in how many turns each term occurs (database triggers keep it right on every insert, update and
delete, however rows are written). A query's idf weights come from that table in the same
statement, so any number of processes on any number of machines answer the same from what the
database holds now, and no process keeps an index to rebuild.

A term is a word of `memories.text.terms`, hashed to a dimension (`term_id`): the column holds no
word, only numbers (the turn's stemmed words are already in its `search` tsvector).

The ranking (`search_turns`) is a convex combination of each turn's BM25 score and its cosine
similarity to the query, each divided by the best of its kind; each turn also takes a share of its
better neighbour's (the answer to a question is often in the reply next to it), and the turns of a
speaker the query names count more (`named_speakers`); the query is embedded without those names
(`without_names`), which would otherwise draw it to the turns that greet the speaker.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from django.db import connection
from pgvector import SparseVector

from memories.models import ALL_TURNS, Episode
from memories.models import LEXICAL_DIMENSIONS as DIMENSIONS
from memories.text import terms
from vault.fields import DecryptedOnRead

K1 = 1.2
B = 0.75
# The turn length (in terms, with the words of the message answered) BM25 compares a turn's
# against. Fixed rather than each user's running average, so that a turn's weights never change
# after it is written: about the mean of the LoCoMo dev set's turns (17.4; 12 gave R@10 0.771, 17 0.774).
AVERAGE_TURN_TERMS = 17.0
CONTEXT_WEIGHT = 0.25  # a word of the message a turn answers counts this much in the turn
MAX_TERMS = (
    1000  # per turn, the heaviest kept: a pasted document is not 16,000 words of a chat turn
)
VECTOR_SHARE = 0.5  # of a turn's hybrid score: the rest is BM25's (both scaled to their best, 1)
# The share when the query named speakers and was embedded without them (`without_names`): its
# vector then says what is asked. On the dev set's 696 such questions R@10 0.817 at 0.5, 0.825 at
# 0.6; on the 90 others 0.699 at 0.5, 0.676 at 0.6.
VECTOR_SHARE_WITHOUT_NAMES = 0.6
# A turn also scores this share of its better neighbour's score: a reply ("A sunrise!") is found by
# what it answers. 0.4 since turns are embedded alone (at 0.25 then: R@10 0.771 against 0.776).
NEIGHBOUR_SHARE = 0.4
SPEAKER_BOOST = (
    1.5  # the query names who said it ("What did Caroline research?"): their turns count more
)


def term_id(term: str) -> int:
    """The term's dimension, 1 to DIMENSIONS: as pgvector prints a sparsevec's indices."""
    digest = hashlib.blake2b(term.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % DIMENSIONS + 1


def turn_weights(text: str, answered: str | None = None) -> SparseVector | None:
    """A turn's BM25 term weights: its words, and at CONTEXT_WEIGHT those of the message it answers
    (a reply is about what it answers), saturated by K1 and normalised for length by B."""
    counts: Counter = Counter(terms(text))
    for term in terms(answered or ""):
        counts[term] += CONTEXT_WEIGHT
    if not counts:
        return None
    length = sum(counts.values())
    norm = K1 * (1 - B + B * length / AVERAGE_TURN_TERMS)
    weights: dict[int, float] = {}
    for term, count in counts.most_common(MAX_TERMS):
        index = term_id(term) - 1  # pgvector-python counts from 0
        weights[index] = weights.get(index, 0.0) + count * (K1 + 1) / (count + norm)
    return SparseVector(weights, DIMENSIONS)


def query_term_ids(query: str) -> list[int]:
    return sorted({term_id(term) for term in terms(query)})


@dataclass
class TurnHit:
    """A turn found, with what retrieval needs of it: no second query."""

    pk: int
    conversation_id: int | None
    sealed: list  # its text as selected: `text` decrypts it when first read
    started_at: datetime
    message_id: int | None
    score: float
    kind: str = Episode.Kind.TURN

    text = DecryptedOnRead(Episode)

    @property
    def sources(self) -> list[int]:
        return [] if self.message_id is None else [self.message_id]


# One statement: the query's idf weights from the user's term counts, every turn's BM25 (an inner
# product) and cosine similarity, each scaled to its best, the better neighbour's share of each (the
# turn before or after in its conversation), the named speakers' boost (`named_speakers`), the best
# `limit`, and their text (as the vault's bound column: token, row id, owner).
SEARCH_SQL = """
WITH counts AS (
    SELECT term, turns FROM memories_turnterm
    WHERE user_id = %(user)s AND term = ANY(%(terms)s::int[] || %(all_turns)s::int)
),
query AS (
    SELECT ('{' || string_agg(t.term || ':' ||
                ln(1 + (n.turns - t.turns + 0.5) / (t.turns + 0.5)), ',' ORDER BY t.term)
            || '}/' || %(dimensions)s)::sparsevec AS weights
    FROM counts t, counts n WHERE n.term = %(all_turns)s AND t.term <> %(all_turns)s
),
turns AS MATERIALIZED (  -- each turn's scores computed once, however often they are read
    SELECT e.id, e.conversation_id, e.started_at, e.speaker,
           COALESCE(-(e.lexical <#> (SELECT weights FROM query)), 0) AS words,
           CASE WHEN %(vector)s::vector IS NULL OR e.embedding IS NULL THEN 0
                ELSE GREATEST(1 - (e.embedding <=> %(vector)s::vector), 0) END AS meaning
    FROM memories_episode e
    WHERE e.user_id = %(user)s AND e.kind = 'turn'
      AND e.flag_reasons = '[]'::jsonb AND e.sensitive_categories <@ %(allowed)s::varchar[]
),
scaled AS (
    SELECT *, COALESCE(words / NULLIF(max(words) OVER (), 0), 0) AS by_words,
              COALESCE(meaning / NULLIF(max(meaning) OVER (), 0), 0) AS by_meaning
    FROM turns
),
shared AS (
    SELECT *,
        by_words + %(neighbour)s * GREATEST(COALESCE(lag(by_words) OVER c, 0),
                                            COALESCE(lead(by_words) OVER c, 0)) AS words_around,
        by_meaning + %(neighbour)s * GREATEST(COALESCE(lag(by_meaning) OVER c, 0),
                                              COALESCE(lead(by_meaning) OVER c, 0)) AS meaning_around
    FROM scaled WINDOW c AS (PARTITION BY conversation_id ORDER BY started_at, id)
),
best AS (
    SELECT id, ((1 - %(vector_share)s) * words_around + %(vector_share)s * meaning_around)
           * CASE WHEN speaker = ANY(%(named)s::varchar[]) THEN %(boost)s ELSE 1 END AS score
    FROM shared
    WHERE conversation_id IS DISTINCT FROM %(exclude)s
),
top AS (
    SELECT id, score FROM best WHERE score > 0 ORDER BY score DESC, id LIMIT %(limit)s
)
SELECT e.id, e.conversation_id, e.started_at,
       (SELECT min(em.message_id) FROM memories_episode_messages em WHERE em.episode_id = e.id),
       top.score, ARRAY[e.text, e.id::text, e.user_id::text]
FROM top JOIN memories_episode e ON e.id = top.id
ORDER BY top.score DESC, e.id
"""


def search_turns(
    user_id: int,
    query: str,
    limit: int,
    *,
    vector: list[float] | None = None,
    named: Sequence[str] | None = None,
    exclude_conversation: int | None = None,
    allowed_categories: frozenset[str] = frozenset(),
) -> list[TurnHit]:
    """The user's best `limit` turns for `query`, best first: by BM25 and, given the query's
    `vector` (embedded without the `named` speakers, `without_names`), by the hybrid score; the
    turns of the `named` speakers (by default `named_speakers` of the query) count more. Turns
    scoring 0 are left out, and so are those that read as an order to the assistant or touch a
    special category not in `allowed_categories`."""
    if named is None:
        named = named_speakers(user_id, query, allowed_categories)
    share = VECTOR_SHARE_WITHOUT_NAMES if named else VECTOR_SHARE  # see without_names
    params = {
        "user": user_id,
        "terms": query_term_ids(query),
        "all_turns": ALL_TURNS,
        "dimensions": DIMENSIONS,
        "vector": vector_literal(vector),
        "named": list(named),
        "neighbour": NEIGHBOUR_SHARE,
        "vector_share": share if vector is not None else 0.0,
        "boost": SPEAKER_BOOST,
        "exclude": exclude_conversation,
        "allowed": sorted(allowed_categories),
        "limit": limit,
    }
    with connection.cursor() as cursor:
        cursor.execute(SEARCH_SQL, params)
        rows = cursor.fetchall()
    return [
        TurnHit(pk, conversation_id, sealed, started_at, message_id, float(score))
        for pk, conversation_id, started_at, message_id, score, sealed in rows
    ]


# The distinct speakers of the user's usable turns (the turns' search ranks no others), one walk of
# `episode_turn_speaker_idx` each, from a speaker's first entry to its first usable turn: a user
# with years of chats has thousands of turns and a few speakers.
SPEAKERS_SQL = """
WITH RECURSIVE found(speaker) AS (
    (SELECT speaker FROM memories_episode
     WHERE user_id = %(user)s AND kind = 'turn' AND speaker > ''
       AND flag_reasons = '[]'::jsonb AND sensitive_categories <@ %(allowed)s::varchar[]
     ORDER BY speaker LIMIT 1)
    UNION ALL
    SELECT (SELECT e.speaker FROM memories_episode e
            WHERE e.user_id = %(user)s AND e.kind = 'turn' AND e.speaker > f.speaker
              AND e.flag_reasons = '[]'::jsonb AND e.sensitive_categories <@ %(allowed)s::varchar[]
            ORDER BY e.speaker LIMIT 1)
    FROM found f WHERE f.speaker IS NOT NULL
)
SELECT speaker FROM found WHERE speaker IS NOT NULL AND lower(speaker) <> 'user'
"""


def named_speakers(
    user_id: int, query: str, allowed_categories: frozenset[str] = frozenset()
) -> list[str]:
    """The speakers of the user's turns (those a search may use: not flagged, of no special category
    outside `allowed_categories`) whose names `query` says as whole words ("What did Bea paint?"),
    unless it names all of them: then none stands out."""
    with connection.cursor() as cursor:
        cursor.execute(SPEAKERS_SQL, {"user": user_id, "allowed": sorted(allowed_categories)})
        speakers = [speaker for (speaker,) in cursor.fetchall()]
    said = query.lower()
    named = [s for s in speakers if re.search(rf"(?<!\w){re.escape(s.lower())}(?!\w)", said)]
    return named if len(named) < len(speakers) else []


def without_names(query: str, names: Sequence[str]) -> str:
    """`query` as its vector should read it: without these names (nor their "'s"). A speaker's
    name pulls the vector toward the turns that greet them, not the ones they say; their own turns
    count more already (SPEAKER_BOOST). As given when no name is left out, or when only function
    words would be left ("Who is Bea?")."""
    if not names:
        return query
    meant = query
    for name in sorted(names, key=len, reverse=True):  # "Mary Jo" before "Mary"
        meant = re.sub(rf"(?<!\w){re.escape(name)}(?:['\u2019]s)?(?!\w)", " ", meant, flags=re.I)
    meant = " ".join(meant.split())
    return meant if terms(meant) else query


def vector_literal(vector: Sequence[float] | None) -> str | None:
    """A query vector as pgvector reads it, bound as a parameter (None: no vector). Both searches
    of a context bind the same vector: written once."""
    return None if vector is None else _literal(tuple(vector))


@lru_cache(maxsize=8)
def _literal(vector: tuple[float, ...]) -> str:
    # nine significant digits: a float4 (what pgvector stores, and the local model gives) reads
    # back exactly, a float64 within a float4 step; a third of repr's time, half its characters
    return "[" + ",".join(map("{:.9g}".format, vector)) + "]"
