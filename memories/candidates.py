"""The candidate lists of a context (`memories.retrieval.build_context`), read in one statement.

Which rows a context may use stays the ORM's (`MemoryQuerySet.usable`, the episodes not flagged),
compiled into the statement. The lists ranked over those rows (by meaning, by words, the core
profile, what is due, what happened when the query says) are this module's SQL, with the query's
vector bound last: compiled as ORM querysets (a UNION ALL of windowed subqueries) the lists alone
took longer than the embedding (docs/benchmarks.md, "Retrieval at scale").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection

from memories.lexical import vector_literal
from memories.models import Episode, Memory
from memories.timeframes import Window
from vault.fields import DecryptedOnRead

CANDIDATES = 20  # rows per list
CORE_SUBJECTS = ("name", "diet", "occupation", "location")
CORE_KINDS = (Memory.Kind.INSTRUCTION,)
ALLERGY = "allergy:"
DUE_SOON_DAYS = 2

# The rows' columns as the lists read them; MEMORY_SELECT and EPISODE_SELECT bring back some.
MEMORY_COLUMNS = (
    "id", "kind", "text", "valid_from", "confidence", "importance", "pinned", "updated_at",
    "last_recalled_at", "source", "attributes", "subject", "embedding", "search",
)  # fmt: skip
EPISODE_COLUMNS = ("id", "kind", "text", "started_at", "conversation_id", "embedding", "search")
# One shape for both kinds of row in the UNION ALL.
MEMORY_SELECT = (
    "'memory', r.id, r.kind, r.text, r.valid_from, NULL::bigint, r.confidence, r.importance, "
    "r.pinned, r.updated_at, r.last_recalled_at, r.source, r.attributes ->> 'app'"
)
EPISODE_SELECT = (
    "'episode', r.id, r.kind, r.text, r.started_at, r.conversation_id, NULL::float8, "
    "NULL::float8, NULL::boolean, NULL::timestamptz, NULL::timestamptz, NULL::text, NULL::text"
)
DISTANCE = "(r.embedding <=> q.vector)"
# Summaries and digests, not turns (`lexical.search_turns` ranks those): named, so that the user's
# few are read through the (user, kind) index, not all their episodes or every user's words.
SUMMARIES = " AND r.kind IN ({})".format(
    ", ".join(f"'{kind}'" for kind in Episode.Kind.values if kind != Episode.Kind.TURN)
)
SOURCES = f"""
CASE WHEN l.type = 'memory'
     THEN ARRAY(SELECT s.message_id FROM {Memory.source_messages.through._meta.db_table} s
                WHERE s.memory_id = l.id ORDER BY 1)
     ELSE ARRAY(SELECT s.message_id FROM {Episode.messages.through._meta.db_table} s
                WHERE s.episode_id = l.id ORDER BY 1) END
"""


@dataclass
class MemoryRow:
    """A candidate memory with what ranking and the prompt need of it."""

    pk: int
    kind: str
    sealed: list  # its text as selected: `text` decrypts it when first read
    valid_from: datetime
    confidence: float
    importance: float
    pinned: bool
    updated_at: datetime
    last_recalled_at: datetime | None
    source: str
    app: str | None
    sources: list[int] = field(default_factory=list)

    text = DecryptedOnRead(Memory)

    @property
    def attributes(self) -> dict:  # as `memories.retrieval.memory_origin` reads a Memory's
        return {"app": self.app} if self.app else {}


@dataclass
class EpisodeRow:
    """A candidate summary, digest or turn of a time the query names."""

    pk: int
    kind: str
    sealed: list  # as MemoryRow's
    started_at: datetime
    conversation_id: int | None
    sources: list[int] = field(default_factory=list)

    text = DecryptedOnRead(Episode)


@dataclass(frozen=True)
class CandidateList:
    """One ranked list: its rows' kind, the SQL condition and order over them (alias `r`, the
    query vector `q.vector`), and the condition's parameters."""

    type: str  # "memory" or "episode"
    where: str
    order: str
    params: tuple = ()
    rows: str = ""  # the rows it ranks, as a subquery of its type's; all of them if empty


@dataclass
class Statement:
    """The lists compiled into one statement, waiting only for the query vector."""

    sql: str  # empty: no list to read
    params: list
    count: int  # of lists

    def read(self, vector: list[float] | None) -> list[list]:
        """Each list's rows, best first (None: the query could not be embedded, and lists by
        meaning are empty)."""
        read: list[list] = [[] for _ in range(self.count)]
        if not self.sql:  # no list to read
            return read
        with connection.cursor() as cursor:
            cursor.execute(self.sql, [vector_literal(vector), *self.params])
            rows = cursor.fetchall()
        for type_, number, _rank, pk, kind, sealed, when, conversation, *rest, sources in rows:
            if type_ == "memory":
                row = MemoryRow(pk, kind, sealed, when, *rest, sources=sources)
            else:
                row = EpisodeRow(pk, kind, sealed, when, conversation, sources=sources)
            read[number].append(row)
        return read


def statement(memories, episodes, lists: list[CandidateList | None], query: str = "") -> Statement:
    """`lists` (None: an empty one) over the rows of the querysets `memories` and `episodes`, as
    one statement of UNION ALL, each row tagged with its list and rank; `q.words` is `query` as
    a tsquery (`or_query`). A list's parameters are its condition's only."""
    bases = {"memory": (memories, MEMORY_COLUMNS), "episode": (episodes, EPISODE_COLUMNS)}
    lists = [c if c is not None and not bases[c.type][0].query.is_empty() else None for c in lists]
    used = {c.type for c in lists if c is not None}
    ctes = ["q AS (SELECT %s::vector AS vector, to_tsquery('english'::regconfig, %s) AS words)"]
    params: list = [or_query(query)]
    for type_ in sorted(used, key=lambda t: t != "memory"):  # params in the order of their SQL
        queryset, columns = bases[type_]
        sql, base_params = queryset.order_by().values_list(*columns).query.sql_with_params()
        ctes.append(f"{type_} AS NOT MATERIALIZED (SELECT * FROM ({sql}) b({', '.join(columns)}))")
        params += base_params
    parts = []
    for number, candidates in enumerate(lists):
        if candidates is None:
            continue
        select = MEMORY_SELECT if candidates.type == "memory" else EPISODE_SELECT
        parts.append(
            f"(SELECT {select}, {number}, row_number() OVER (ORDER BY {candidates.order}) "
            f"FROM {candidates.rows or candidates.type} r, q WHERE {candidates.where} "
            f"ORDER BY {candidates.order} LIMIT {CANDIDATES})"
        )
        params += candidates.params
    if not parts:
        return Statement("", [], len(lists))
    sql = (
        f"WITH {', '.join(ctes)}, lists(type, id, kind, text, at, conversation_id, confidence, "
        "importance, pinned, updated_at, last_recalled_at, source, app, list, rank) AS ("
        + " UNION ALL ".join(parts)
        + ") SELECT l.type, l.list, l.rank, l.id, l.kind, l.text, l.at, l.conversation_id, "
        "l.confidence, l.importance, l.pinned, l.updated_at, l.last_recalled_at, l.source, l.app, "
        f"{SOURCES} FROM lists l ORDER BY l.list, l.rank"
    )
    return Statement(sql, params, len(lists))


def by_meaning(type_: str) -> CandidateList:
    """The closest in meaning above CONTEXT_MIN_SIMILARITY."""
    where = f"q.vector IS NOT NULL AND r.embedding IS NOT NULL AND {DISTANCE} <= %s"
    kinds = "" if type_ == "memory" else SUMMARIES
    return CandidateList(
        type_, where + kinds, f"{DISTANCE}, r.id", (1.0 - settings.CONTEXT_MIN_SIMILARITY,)
    )


def by_words(type_: str, query: str) -> CandidateList | None:
    """Those matching any word of the query in Postgres full text (`q.words`), by `ts_rank`."""
    if or_query(query) is None:
        return None
    kinds = "" if type_ == "memory" else SUMMARIES.replace("r.kind", "kind")
    return CandidateList(
        type_,
        "r.search @@ q.words",
        "ts_rank(r.search, q.words) DESC, r.id",
        # The user's rows first, then their words (OFFSET 0: not planned as one): the full-text
        # index holds every user's rows, and a common word's would grow with the users.
        rows=f"(SELECT * FROM {type_} WHERE TRUE{kinds} OFFSET 0)",
    )


def or_query(query: str) -> str | None:
    """The query's words (at most 32) as a raw tsquery that any of them matches."""
    words = re.findall(r"[^\W_]{2,}", query.lower())[:32]
    return " | ".join(words) if words else None


def core() -> CandidateList:
    """Always-on profile: what the user pinned, how they want answers, who they are, what they can't
    eat. Never what an app pushed: an app's memory is used only when the query calls for it."""
    return CandidateList(
        "memory",
        "(r.pinned OR r.kind = ANY(%s) OR r.subject = ANY(%s) OR starts_with(r.subject, %s)) "
        "AND NOT r.attributes ? 'app'",
        "r.pinned DESC, r.importance DESC, r.updated_at DESC, r.id",
        (list(CORE_KINDS), list(CORE_SUBJECTS), ALLERGY),
    )


def due(now: datetime) -> CandidateList:
    """What is due soon: dated memories (deadlines, events) from today to DUE_SOON_DAYS ahead, and
    open action items; soonest first."""
    today = now.date()
    horizon = today + timedelta(days=DUE_SOON_DAYS)
    return CandidateList(
        "memory",
        "(r.attributes -> 'date' >= to_jsonb(%s::text) AND r.attributes -> 'date' <= to_jsonb(%s::text))"
        " OR r.attributes ->> 'status' = 'open'",
        "r.attributes -> 'date', r.importance DESC, r.id",
        (today.isoformat(), horizon.isoformat()),
    )


def in_window(type_: str, window: Window | None) -> CandidateList | None:
    """Rows from the time the query names, the closest in meaning first (the newest first when
    the query has no vector)."""
    if window is None:
        return None
    at = "r.valid_from" if type_ == "memory" else "r.started_at"
    return CandidateList(
        type_,
        f"{at} >= %s AND {at} < %s AND (q.vector IS NULL OR r.embedding IS NOT NULL)",
        f"{DISTANCE}, CASE WHEN q.vector IS NULL THEN {at} END DESC, r.id",
        (window.start, window.end),
    )


def ranked_memories(memories, candidates: CandidateList) -> list[Memory]:
    """One memory list as Memory objects, best first (for pages: the banner, the profile)."""
    rows = statement(memories, None, [candidates]).read(None)[0]
    found = memories.defer("embedding", "search").in_bulk([row.pk for row in rows])
    return [found[row.pk] for row in rows]
