"""PostgreSQL event store: the cluster backend, so every node sees every stream.

Same contract and same group commit as SQLite. Each process runs one writer task that drains
every waiting append into one transaction: one round of statements and one WAL flush for the
whole batch. Across processes, the stream rows are locked FOR UPDATE (in sorted order, so two
batches cannot deadlock on them) before the version check, which makes the check
authoritative. The global position comes from a one-row counter updated last in the
transaction; its row lock makes position order equal commit order, so a projection reading
the global log never skips an event that committed late.

Payloads are stored as bytea holding the codec's bytes: what is read back is exactly what was
written.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Sequence

import asyncpg
from orjson import loads

from runtime.events import Event, NewEvent, encode, kind_of
from runtime.stores.base import (
    ANY,
    MAX_READ_LIMIT,
    AppendResult,
    EventStore,
    Snapshot,
    StoreError,
    WrongExpectedVersion,
    encode_append,
    events_from_rows,
    log_events_from_rows,
    validate_log_filter,
    validate_range,
    validate_snapshot_seq,
)

__all__ = ["PostgresEventStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    position BIGINT PRIMARY KEY,
    stream   TEXT   NOT NULL,
    seq      BIGINT NOT NULL,
    type     TEXT   NOT NULL,
    data     BYTEA  NOT NULL,
    ts       DOUBLE PRECISION NOT NULL,
    idem     TEXT,
    meta     BYTEA,
    kind     TEXT,
    ver      INT    NOT NULL DEFAULT 1,
    UNIQUE (stream, seq)
);
CREATE TABLE IF NOT EXISTS streams (
    stream  TEXT PRIMARY KEY,
    version BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency (
    stream    TEXT   NOT NULL,
    key       TEXT   NOT NULL,
    first_seq BIGINT NOT NULL,
    last_seq  BIGINT NOT NULL,
    first_pos BIGINT NOT NULL,
    last_pos  BIGINT NOT NULL,
    ts        DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (stream, key)
);
CREATE TABLE IF NOT EXISTS snapshots (
    stream TEXT   NOT NULL,
    seq    BIGINT NOT NULL,
    ts     DOUBLE PRECISION NOT NULL,
    state  BYTEA  NOT NULL,
    ver    INT    NOT NULL DEFAULT 1,
    PRIMARY KEY (stream, seq)
);
CREATE TABLE IF NOT EXISTS log_head (
    id   INT PRIMARY KEY CHECK (id = 1),
    last BIGINT NOT NULL
);
INSERT INTO log_head VALUES (1, 0) ON CONFLICT DO NOTHING;
"""

#: what later versions added to a database an older version wrote: (table, column, its
#: declaration, what fills it in). Checked before altering: ALTER TABLE and CREATE INDEX take
#: their locks even when there is nothing to do, and would deadlock with running appends.
_COLUMNS = [
    ("events", "kind", "TEXT", "UPDATE events SET kind = split_part(stream, '/', 1)"),
    ("events", "ver", "INT NOT NULL DEFAULT 1", None),
    ("snapshots", "ver", "INT NOT NULL DEFAULT 1", None),
]
_INDEXES = {
    "events_by_kind": "CREATE INDEX events_by_kind ON events (kind, position)",
    "streams_by_name": 'CREATE INDEX streams_by_name ON streams (stream COLLATE "C")',
}


async def _migrate(conn: asyncpg.Connection) -> None:
    for table, column, decl, backfill in _COLUMNS:
        if not await conn.fetchval(
                "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()"
                " AND table_name = $1 AND column_name = $2", table, column):
            await conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
            if backfill:
                await conn.execute(backfill)
    for name, ddl in _INDEXES.items():
        if not await conn.fetchval("SELECT 1 FROM pg_indexes WHERE schemaname = "
                                   "current_schema() AND indexname = $1", name):
            await conn.execute(ddl)

_MAX_BATCH = 4_096
_BIG = 1 << 62


class _Append:
    __slots__ = ("stream", "rows", "expected", "key", "fut")

    def __init__(self, stream: str, rows: list[tuple[str, bytes, bytes | None, int]],
                 expected: int, key: str | None, fut: asyncio.Future) -> None:
        self.stream = stream
        self.rows = rows
        self.expected = expected
        self.key = key
        self.fut = fut


def _idem_result(row: asyncpg.Record) -> AppendResult:
    """The first outcome of an append, from its idempotency row: what a retry gets back."""
    return AppendResult(row["stream"], row["first_seq"], row["last_seq"], row["first_pos"],
                        row["last_pos"], row["ts"], duplicate=True)


class PostgresEventStore(EventStore):
    def __init__(self, dsn: str, pool_size: int = 8) -> None:
        self.dsn = dsn
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._init_lock: asyncio.Lock | None = None
        self._queue: asyncio.Queue[_Append | None] | None = None
        self._writer: asyncio.Task | None = None
        self._closed = False

    async def _ready(self) -> asyncpg.Pool:
        """Connect on first use, in the event loop that uses the store (asyncpg pools are
        bound to their loop; a Ray host's loop only exists once it runs)."""
        if self._closed:
            raise StoreError("store is closed")
        if self._pool is not None:
            return self._pool
        if self._init_lock is None:
            self._init_lock = asyncio.Lock()
        async with self._init_lock:
            if self._pool is None:
                pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=self.pool_size)
                async with pool.acquire() as conn:
                    # several processes may create the schema at once: serialise them
                    async with conn.transaction():
                        await conn.execute("SELECT pg_advisory_xact_lock(72817001)")
                        await conn.execute(_SCHEMA)
                        await _migrate(conn)
                self._queue = asyncio.Queue()
                self._writer = asyncio.get_running_loop().create_task(self._write_loop())
                self._pool = pool
        return self._pool

    # ---------------------------------------------------------------- writes (group commit)

    async def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        expected_version: int,
        idempotency_key: str | None = None,
    ) -> AppendResult:
        rows = encode_append(stream, events, expected_version)
        await self._ready()
        fut = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Append(stream, rows, expected_version, idempotency_key, fut))
        return await fut

    async def _write_loop(self) -> None:
        queue = self._queue
        while True:
            item = await queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < _MAX_BATCH and not queue.empty():
                nxt = queue.get_nowait()
                if nxt is None:
                    await self._commit_batch(batch)
                    return
                batch.append(nxt)
            await self._commit_batch(batch)

    async def _commit_batch(self, batch: list[_Append]) -> None:
        try:
            async with self._pool.acquire() as conn:
                async with conn.transaction():
                    results = await self._apply(conn, batch)
        except Exception as exc:  # the transaction rolled back: nothing of the batch is stored
            err = StoreError(f"commit failed: {exc!r}")
            results = [err] * len(batch)
        for req, result in zip(batch, results):
            if req.fut.done():
                continue
            if isinstance(result, BaseException):
                req.fut.set_exception(result)
            else:
                req.fut.set_result(result)

    async def _apply(self, conn: asyncpg.Connection, batch: list[_Append]) -> list[Any]:
        streams = sorted({r.stream for r in batch})
        await conn.execute("INSERT INTO streams (stream, version) SELECT s, 0 FROM unnest($1::text[])"
                           " AS s ON CONFLICT DO NOTHING", streams)
        versions = {r["stream"]: r["version"] for r in await conn.fetch(
            "SELECT stream, version FROM streams WHERE stream = ANY($1::text[]) "
            "ORDER BY stream FOR UPDATE", streams)}
        keyed = [(r.stream, r.key) for r in batch if r.key is not None]
        prior: dict[tuple[str, str], AppendResult] = {}
        if keyed:
            for row in await conn.fetch(
                    "SELECT i.* FROM idempotency i JOIN unnest($1::text[], $2::text[]) AS k(s, k)"
                    " ON i.stream = k.s AND i.key = k.k",
                    [s for s, _ in keyed], [k for _, k in keyed]):
                prior[(row["stream"], row["key"])] = _idem_result(row)
        # Decide every request against the locked versions. Accepted ones become ("new", i)
        # and get positions below; a key repeated within the batch is ("dup", i) of the first.
        ts = time.time()
        decided: list[Any] = []
        accepted: list[tuple[_Append, int]] = []  # (request, first seq)
        claimed: dict[tuple[str, str], int] = {}
        total = 0
        for req in batch:
            key = (req.stream, req.key)
            if req.key is not None and key in prior:
                decided.append(prior[key])
                continue
            if req.key is not None and key in claimed:
                decided.append(("dup", claimed[key]))
                continue
            current = versions[req.stream]
            if req.expected != ANY and req.expected != current:
                decided.append(WrongExpectedVersion(req.stream, req.expected, current))
                continue
            if req.key is not None:
                claimed[key] = len(accepted)
            decided.append(("new", len(accepted)))
            accepted.append((req, current + 1))
            versions[req.stream] = current + len(req.rows)
            total += len(req.rows)
        if not accepted:
            return decided
        # the global position: taken last, its row lock orders commits
        last = await conn.fetchval("UPDATE log_head SET last = last + $1 WHERE id = 1 "
                                   "RETURNING last", total)
        pos = last - total + 1
        cols: tuple[list, ...] = ([], [], [], [], [], [], [], [], [], [])
        idem_cols: tuple[list, ...] = ([], [], [], [], [], [], [])
        made: list[AppendResult] = []
        for req, first_seq in accepted:
            first_pos = pos
            kind = kind_of(req.stream)
            for i, (etype, data, meta, ver) in enumerate(req.rows):
                for col, value in zip(cols, (pos, req.stream, first_seq + i, etype, data, ts,
                                             req.key, meta, kind, ver)):
                    col.append(value)
                pos += 1
            result = AppendResult(req.stream, first_seq, first_seq + len(req.rows) - 1,
                                  first_pos, pos - 1, ts)
            made.append(result)
            if req.key is not None:
                for col, value in zip(idem_cols, (req.stream, req.key, result.first_seq,
                                                  result.last_seq, first_pos, pos - 1, ts)):
                    col.append(value)
        await conn.execute(
            "INSERT INTO events (position, stream, seq, type, data, ts, idem, meta, kind, ver) "
            "SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], "
            "$5::bytea[], $6::float8[], $7::text[], $8::bytea[], $9::text[], $10::int[])",
            *cols)
        changed = sorted({req.stream for req, _ in accepted})
        await conn.execute(
            "UPDATE streams SET version = v.version FROM unnest($1::text[], $2::bigint[]) "
            "AS v(stream, version) WHERE streams.stream = v.stream",
            changed, [versions[s] for s in changed])
        if idem_cols[0]:
            await conn.execute(
                "INSERT INTO idempotency SELECT * FROM unnest($1::text[], $2::text[], "
                "$3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::float8[])",
                *idem_cols)
        out: list[Any] = []
        for item in decided:
            if isinstance(item, tuple):
                tag, i = item
                first = made[i]
                out.append(first if tag == "new" else AppendResult(
                    first.stream, first.first_seq, first.last_seq, first.first_position,
                    first.last_position, first.timestamp, duplicate=True))
            else:
                out.append(item)
        return out

    # ---------------------------------------------------------------- reads

    async def read(
        self, stream: str, from_seq: int = 1, to_seq: int | None = None, limit: int | None = None
    ) -> list[Event]:
        validate_range(from_seq, to_seq, limit)
        pool = await self._ready()
        rows = await pool.fetch(
            "SELECT seq, type, data, ts, position, idem, meta, ver FROM events WHERE stream = $1 "
            "AND seq >= $2 AND seq <= $3 ORDER BY seq LIMIT $4",
            stream, max(from_seq, 1), to_seq if to_seq is not None else _BIG,
            limit if limit is not None else MAX_READ_LIMIT)
        return events_from_rows(stream, rows)

    async def last_version(self, stream: str) -> int:
        pool = await self._ready()
        return await pool.fetchval("SELECT version FROM streams WHERE stream = $1", stream) or 0

    async def read_all(self, from_position: int = 1, limit: int = 1000, *,
                       to_position: int | None = None, kinds: Sequence[str] | None = None,
                       types: Sequence[str] | None = None) -> list[Event]:
        validate_range(from_position, None, limit)
        validate_log_filter(kinds, types, to_position)
        pool = await self._ready()
        rows = await pool.fetch(
            "SELECT stream, seq, type, data, ts, position, idem, meta, ver FROM events "
            "WHERE position >= $1 AND position <= $2 AND ($3::text[] IS NULL OR kind = ANY($3))"
            " AND ($4::text[] IS NULL OR type = ANY($4)) ORDER BY position LIMIT $5",
            from_position, to_position if to_position is not None else _BIG,
            None if kinds is None else list(kinds), None if types is None else list(types),
            min(limit, MAX_READ_LIMIT))
        return log_events_from_rows(rows)

    async def list_streams(self, kind: str, after: str | None = None, limit: int = 1000
                           ) -> list[tuple[str, int]]:
        validate_range(0, None, limit)
        pool = await self._ready()
        lo = after if after is not None and after > f"{kind}/" else f"{kind}/"
        # COLLATE "C": a kind's streams are the byte range from "kind/" up to "kind0"
        rows = await pool.fetch(
            'SELECT stream, version FROM streams WHERE stream COLLATE "C" > $1 '
            'AND stream COLLATE "C" < $2 ORDER BY stream COLLATE "C" LIMIT $3',
            lo, f"{kind}0", min(limit, MAX_READ_LIMIT))
        return [(r["stream"], r["version"]) for r in rows]

    async def last_position(self) -> int:
        pool = await self._ready()
        return await pool.fetchval("SELECT coalesce(max(position), 0) FROM events")

    async def find_idempotent(self, stream: str, key: str) -> AppendResult | None:
        pool = await self._ready()
        row = await pool.fetchrow("SELECT * FROM idempotency WHERE stream = $1 AND key = $2",
                                  stream, key)
        return None if row is None else _idem_result(row)

    async def delete_events(self, stream: str, to_seq: int) -> None:
        validate_range(to_seq, None, None)
        pool = await self._ready()
        await pool.execute("DELETE FROM events WHERE stream = $1 AND seq <= $2", stream, to_seq)

    async def save_snapshot(self, stream: str, seq: int, state: Any, keep: int | None = None,
                            version: int = 1) -> None:
        validate_snapshot_seq(seq)
        blob = encode(state)
        pool = await self._ready()
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO snapshots (stream, seq, ts, state, ver) VALUES ($1, $2, $3, $4, $5)"
                " ON CONFLICT (stream, seq) DO UPDATE SET ts = excluded.ts, "
                "state = excluded.state, ver = excluded.ver", stream, seq, time.time(), blob,
                version)
            if keep is not None:
                await conn.execute(
                    "DELETE FROM snapshots WHERE stream = $1 AND seq NOT IN (SELECT seq FROM "
                    "snapshots WHERE stream = $1 ORDER BY seq DESC LIMIT $2)", stream, keep)

    async def load_snapshot(self, stream: str, max_seq: int | None = None) -> Snapshot | None:
        pool = await self._ready()
        row = await pool.fetchrow(
            "SELECT seq, ts, state, ver FROM snapshots WHERE stream = $1 AND seq <= $2 "
            "ORDER BY seq DESC LIMIT 1", stream, max_seq if max_seq is not None else _BIG)
        return None if row is None else Snapshot(stream, row["seq"], loads(row["state"]),
                                                 row["ts"], row["ver"])

    async def delete_snapshots(self, stream: str, max_seq: int | None = None) -> None:
        pool = await self._ready()
        await pool.execute("DELETE FROM snapshots WHERE stream = $1 AND seq <= $2", stream,
                           max_seq if max_seq is not None else _BIG)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._queue.put_nowait(None)
            await self._writer
        if self._pool is not None:
            await self._pool.close()
