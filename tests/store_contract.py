"""The EventStore conformance suite: written once, run against every backend.

A backend's test module subclasses EventStoreContract and provides ``open_backend`` (a function
that opens a store instance on one fresh, empty database: called again, another instance on the
same data, as after a restart) and ``contract_url`` (the URL of another fresh store, for the
case that runs several processes). The contract derives ``store`` and ``reopen`` from it.
The cases follow Akka's JournalSpec and SnapshotStoreSpec, plus what this runtime promises beyond
them: typed conflicts, idempotent appends, a global ordered log, and concurrent writers.
"""

from __future__ import annotations

import asyncio
import multiprocessing

import pytest

from runtime.events import Encoded, NewEvent, encode
from runtime.stores import open_store
from runtime.stores.base import ANY, StoreError, WrongExpectedVersion

S = "journal/p-1"


def ev(i: int, **extra) -> NewEvent:
    return NewEvent("e", {"i": i, **extra})


async def write_five(store, stream: str = S) -> None:
    """JournalSpec's fixture: seq 1..5, the last two as one atomic write."""
    for i in (1, 2, 3):
        await store.append(stream, [ev(i)], i - 1)
    await store.append(stream, [ev(4), ev(5)], 3)


def seqs(events) -> list[int]:
    return [e.seq for e in events]


def _contend(url: str, stream: str, rounds: int, own: int, worker: int, out) -> None:
    """One process of the multi-process case (module level: spawned processes import it)."""

    async def run() -> None:
        store = open_store(url)
        wins = 0
        for i in range(rounds):
            version = await store.last_version(stream)
            try:
                await store.append(stream, [ev(worker)], version)
                wins += 1
            except WrongExpectedVersion:
                pass
            # group-committed appends to streams of its own, interleaved with the others'
            await asyncio.gather(*(store.append(f"own{worker}/{j}", [ev(i)], ANY)
                                   for j in range(own)))
        await store.close()
        out.put(wins)

    asyncio.run(run())


class EventStoreContract:
    #: False for a backend whose data lives in one process (memory://): the several-processes
    #: case does not apply to it.
    shared_across_processes = True

    @pytest.fixture
    async def store(self, open_backend):
        s = open_backend()
        yield s
        await s.close()

    @pytest.fixture
    def reopen(self, open_backend):
        async def _reopen():
            return open_backend()

        return _reopen

    # ------------------------------------------------------------ JournalSpec: replay bounds

    async def test_replay_all(self, store):
        await write_five(store)
        events = await store.read(S)
        assert seqs(events) == [1, 2, 3, 4, 5]
        assert [e.data["i"] for e in events] == [1, 2, 3, 4, 5]
        assert all(e.stream == S and e.type == "e" for e in events)
        assert await store.last_version(S) == 5

    @pytest.mark.parametrize(
        "lo,hi,limit,expected",
        [
            (3, None, None, [3, 4, 5]),  # lower bound
            (1, 3, None, [1, 2, 3]),  # upper bound
            (2, 3, None, [2, 3]),  # both
            (1, None, 3, [1, 2, 3]),  # count limit
            (2, 5, 2, [2, 3]),  # bounds and count
            (2, 2, None, [2]),  # lower == upper
            (1, None, 1, [1]),  # count 1
            (1, None, 0, []),  # count 0
            (4, 3, None, []),  # lower > upper
            (6, None, None, []),  # past the end
            (0, None, None, [1, 2, 3, 4, 5]),  # 0 reads from the start
        ],
    )
    async def test_replay_bounds(self, store, lo, hi, limit, expected):
        await write_five(store)
        assert seqs(await store.read(S, lo, hi, limit)) == expected

    async def test_unknown_stream(self, store):
        assert await store.read("journal/unknown") == []
        assert await store.last_version("journal/unknown") == 0
        assert await store.load_snapshot("journal/unknown") is None
        assert await store.find_idempotent("journal/unknown", "k") is None

    @pytest.mark.parametrize("lo,hi,limit", [(-1, None, None), (1, -2, None), (1, None, -1),
                                             ("1", None, None), (1, None, 1.5)])
    async def test_invalid_bounds_raise(self, store, lo, hi, limit):
        with pytest.raises(ValueError):
            await store.read(S, lo, hi, limit)

    async def test_deleted_events_are_not_replayed_and_highest_seq_is_kept(self, store):
        await write_five(store)
        await store.delete_events(S, 3)
        assert seqs(await store.read(S)) == [4, 5]
        assert await store.last_version(S) == 5
        await store.delete_events(S, 5)  # everything
        assert await store.read(S) == []
        assert await store.last_version(S) == 5
        with pytest.raises(WrongExpectedVersion):
            await store.append(S, [ev(6)], 0)  # sequence numbers are never reused
        result = await store.append(S, [ev(6)], 5)
        assert (result.first_seq, result.last_seq) == (6, 6)

    # ------------------------------------------------------------ atomic writes, conflicts

    async def test_atomic_batch_is_all_or_nothing_on_conflict(self, store):
        await write_five(store)
        with pytest.raises(WrongExpectedVersion) as info:
            await store.append(S, [ev(10), ev(11), ev(12)], 4)
        assert (info.value.expected, info.value.actual, info.value.stream) == (4, 5, S)
        assert seqs(await store.read(S)) == [1, 2, 3, 4, 5]

    async def test_unencodable_event_rejects_the_whole_batch(self, store):
        await write_five(store)
        with pytest.raises((TypeError, ValueError)):
            await store.append(S, [ev(6), NewEvent("e", {"bad": object()})], 5)
        assert await store.last_version(S) == 5
        assert (await store.append(S, [ev(6)], 5)).first_seq == 6  # the stream still works

    async def test_expected_version_ahead_is_a_conflict_not_a_gap(self, store):
        await write_five(store)
        with pytest.raises(WrongExpectedVersion):
            await store.append(S, [ev(9)], 8)
        with pytest.raises(WrongExpectedVersion):
            await store.append("journal/new", [ev(1)], 3)
        assert await store.last_version("journal/new") == 0

    async def test_any_version_appends_without_gap(self, store):
        await write_five(store)
        result = await store.append(S, [ev(6), ev(7)], ANY)
        assert (result.first_seq, result.last_seq) == (6, 7)
        assert seqs(await store.read(S)) == [1, 2, 3, 4, 5, 6, 7]

    @pytest.mark.parametrize("events,expected", [([], 0), ([ev(1)], -2), ([ev(1)], "0")])
    async def test_invalid_appends_raise_and_write_nothing(self, store, events, expected):
        with pytest.raises(ValueError):
            await store.append(S, events, expected)
        assert await store.last_version(S) == 0

    async def test_append_result_positions(self, store):
        r1 = await store.append(S, [ev(1), ev(2)], 0)
        r2 = await store.append("journal/other", [ev(1)], 0)
        assert (r1.first_seq, r1.last_seq) == (1, 2)
        assert r1.last_position == r1.first_position + 1
        assert r2.first_position > r1.last_position
        assert not r1.duplicate and r1.timestamp > 0
        events = await store.read(S)
        assert [e.position for e in events] == [r1.first_position, r1.last_position]

    # ------------------------------------------------------------ idempotency

    async def test_idempotent_append_returns_first_outcome(self, store):
        await write_five(store)
        first = await store.append(S, [ev(6), ev(7)], 5, idempotency_key="cmd-1")
        again = await store.append(S, [ev(6), ev(7)], 5, idempotency_key="cmd-1")
        assert again.duplicate and not first.duplicate
        assert (again.first_seq, again.last_seq, again.first_position, again.last_position) == (
            first.first_seq, first.last_seq, first.first_position, first.last_position)
        assert await store.last_version(S) == 7
        await store.append(S, [ev(8)], 7)
        # a retry long after, with a now-stale version, still reports the original outcome
        late = await store.append(S, [ev(6)], 0, idempotency_key="cmd-1")
        assert late.duplicate and late.first_seq == 6
        assert await store.last_version(S) == 8
        found = await store.find_idempotent(S, "cmd-1")
        assert found is not None and (found.first_seq, found.last_seq) == (6, 7)
        events = await store.read(S, 6, 7)
        assert [e.idempotency_key for e in events] == ["cmd-1", "cmd-1"]

    async def test_idempotency_keys_are_per_stream(self, store):
        a = await store.append("journal/a", [ev(1)], 0, idempotency_key="same")
        b = await store.append("journal/b", [ev(1)], 0, idempotency_key="same")
        assert not a.duplicate and not b.duplicate

    async def test_concurrent_retries_with_one_key_append_once(self, store):
        results = await asyncio.gather(*(store.append(S, [ev(1)], ANY, idempotency_key="k")
                                         for _ in range(20)))
        assert sum(not r.duplicate for r in results) == 1
        assert {r.first_seq for r in results} == {1}
        assert await store.last_version(S) == 1

    # ------------------------------------------------------------ payloads

    async def test_payload_and_metadata_round_trip(self, store):
        data = {"text": "héllo ✓ \u0000 end", "nested": {"list": [1, 2.5, None, True]},
                "big": 2**53}
        await store.append(S, [NewEvent("rich", data, {"trace": "t-1", "n": 3})], 0)
        (event,) = await store.read(S)
        assert event.type == "rich" and event.data == data
        assert event.metadata == {"trace": "t-1", "n": 3}

    async def test_payloads_encoded_already_are_written_as_they_are(self, store):
        """The host encodes an event once and hands the bytes on (runtime.events.Encoded)."""
        data, meta, state = {"n": [1, "two"]}, {"trace": "t-2"}, {"sum": 3}
        await store.append(S, [NewEvent("pre", Encoded(encode(data)), Encoded(encode(meta)))],
                           0)
        await store.save_snapshot(S, 1, Encoded(encode(state)))
        (event,) = await store.read(S)
        assert (event.type, event.data, event.metadata) == ("pre", data, meta)
        assert (await store.load_snapshot(S)).state == state

    async def test_durable_across_reopen(self, store, reopen):
        await write_five(store)
        await store.save_snapshot(S, 5, {"sum": 15})
        fifth = (await store.read(S))[-1]
        other = await reopen()
        try:
            assert seqs(await other.read(S)) == [1, 2, 3, 4, 5]
            assert await other.last_version(S) == 5
            assert (await other.load_snapshot(S)).state == {"sum": 15}
            # the reopened store continues the sequence and the global order
            r = await other.append(S, [ev(6)], 5)
            assert r.first_seq == 6
            assert r.first_position > fifth.position
            assert (await store.read(S))[-1].seq == 6  # the first instance sees it too
        finally:
            await other.close()

    async def test_two_instances_alternating_share_one_gap_free_log(self, store, reopen):
        """Two instances on one database (as two hosts' processes would be) take turns. Each
        caches what it last committed between its own transactions, so each must notice the
        other's commits: otherwise a position or a version would be handed out twice."""
        other = await reopen()
        try:
            for i in range(20):
                await store.append("alt/a", [ev(i)], i)
                await other.append("alt/b", [ev(i)], i)
                await other.append("alt/shared", [ev(i)], 2 * i)
                await store.append("alt/shared", [ev(i)], 2 * i + 1)
            log = await store.read_all(1, 1000)
            assert [e.position for e in log] == list(range(1, 81))
            assert seqs(await other.read("alt/shared")) == list(range(1, 41))
        finally:
            await other.close()

    # ------------------------------------------------------------ global log

    async def test_global_log_in_commit_order(self, store):
        await store.append("g/a", [ev(1), ev(2)], 0)
        await store.append("g/b", [ev(1)], 0)
        await store.append("g/a", [ev(3)], 2)
        log = await store.read_all(1, 100)
        assert [(e.stream, e.seq) for e in log] == [("g/a", 1), ("g/a", 2), ("g/b", 1), ("g/a", 3)]
        positions = [e.position for e in log]
        assert positions == sorted(positions) and len(set(positions)) == 4
        assert await store.last_position() == positions[-1]
        assert [e.position for e in await store.read_all(positions[2], 100)] == positions[2:]
        assert [e.position for e in await store.read_all(1, 2)] == positions[:2]
        assert await store.read_all(positions[-1] + 1, 10) == []

    async def test_global_log_filtered_by_kind_and_type(self, store):
        await store.append("assistant/a", [NewEvent("created", {"n": 1})], 0)
        await store.append("counter/c", [ev(1), ev(2)], 0)
        await store.append("thread/t", [NewEvent("created", {"n": 2}),
                                        NewEvent("messages_written", {})], 0)
        await store.append("assistant/a", [NewEvent("deleted", {})], 1)
        await store.append("assistant-like/x", [NewEvent("created", {})], 0)
        top = await store.last_position()
        kinds = await store.read_all(1, 100, kinds=["assistant", "thread"])
        assert [(e.stream, e.type) for e in kinds] == [
            ("assistant/a", "created"), ("thread/t", "created"),
            ("thread/t", "messages_written"), ("assistant/a", "deleted")]
        both = await store.read_all(1, 100, kinds=["assistant", "thread"],
                                    types=["created", "deleted"])
        assert [(e.stream, e.type) for e in both] == [
            ("assistant/a", "created"), ("thread/t", "created"), ("assistant/a", "deleted")]
        assert [e.type for e in await store.read_all(1, 100, types=["deleted"])] == ["deleted"]
        assert await store.read_all(1, 100, kinds=[]) == []
        # bounded both ways, paged by limit, the full envelope kept
        upto = await store.read_all(1, 100, to_position=kinds[1].position, kinds=["thread",
                                                                                  "assistant"])
        assert [e.position for e in upto] == [e.position for e in kinds[:2]]
        page = await store.read_all(kinds[1].position, 2, kinds=["assistant", "thread"])
        assert [e.position for e in page] == [e.position for e in kinds[1:3]]
        assert page[0].data == {"n": 2} and page[0].seq == 1
        assert await store.read_all(top + 1, 10, kinds=["thread"]) == []
        with pytest.raises(ValueError):
            await store.read_all(1, 10, kinds="thread")

    async def test_a_whole_stream_iterated_a_page_at_a_time(self, store):
        await store.append(S, [ev(i) for i in range(12)], 0)
        assert [e.seq async for e in store.iter_stream(S, page=5)] == list(range(1, 13))
        assert [e.seq async for e in store.iter_stream(S, 7, page=5)] == list(range(1, 8))
        assert [e async for e in store.iter_stream("journal/none")] == []

    async def test_streams_of_a_kind_listed_in_pages(self, store):
        for name in ("thread/b", "thread/a", "thread/c/d", "threads/x", "thread0/y", "t/z",
                     "assistant/q"):
            await store.append(name, [ev(1)], 0)
        await store.append("thread/a", [ev(2)], 1)
        assert await store.list_streams("thread") == [
            ("thread/a", 2), ("thread/b", 1), ("thread/c/d", 1)]
        first = await store.list_streams("thread", limit=2)
        assert first == [("thread/a", 2), ("thread/b", 1)]
        assert await store.list_streams("thread", after=first[-1][0]) == [("thread/c/d", 1)]
        assert await store.list_streams("thread", after="thread/c/d") == []
        assert await store.list_streams("nothing") == []

    async def test_events_and_snapshots_keep_their_schema_version(self, store):
        await store.append(S, [NewEvent("e", {"i": 1}), NewEvent("e", {"i": 2},
                                                                 schema_version=3)], 0)
        assert [e.schema_version for e in await store.read(S)] == [1, 3]
        assert [e.schema_version for e in await store.read_all(1, 10)] == [1, 3]
        await store.save_snapshot(S, 2, {"x": 1}, version=4)
        assert (await store.load_snapshot(S)).version == 4
        await store.save_snapshot(S, 3, {"x": 1})
        assert (await store.load_snapshot(S)).version == 1

    async def test_projection_checkpoints_survive_a_reopen(self, store, reopen):
        assert await store.load_checkpoint("directory") is None
        await store.save_checkpoint("directory", 0, {"ignored": True})  # nothing folded yet
        assert await store.load_checkpoint("directory") is None
        await store.save_checkpoint("directory", 7, {"rows": [1]})
        await store.save_checkpoint("directory", 9, {"rows": [1, 2]})
        await store.save_checkpoint("other", 3, {})
        other = await reopen()
        try:
            cp = await other.load_checkpoint("directory")
            assert (cp.position, cp.state) == (9, {"rows": [1, 2]})
            assert (await other.load_checkpoint("other")).position == 3
            assert await other.list_streams("$projection") == []  # not a stream of the log
            assert await other.read_all(1, 10) == []
        finally:
            await other.close()

    # ------------------------------------------------------------ SnapshotStoreSpec

    async def test_snapshot_load_latest_and_bounded(self, store):
        for seq in (10, 20, 30):
            await store.save_snapshot(S, seq, {"at": seq})
        latest = await store.load_snapshot(S)
        assert (latest.seq, latest.state) == (30, {"at": 30})
        assert (await store.load_snapshot(S, 25)).seq == 20
        assert (await store.load_snapshot(S, 20)).seq == 20
        assert await store.load_snapshot(S, 9) is None

    async def test_snapshot_overwrite_same_seq(self, store):
        await store.save_snapshot(S, 10, {"v": 1})
        await store.save_snapshot(S, 10, {"v": 2})
        assert (await store.load_snapshot(S)).state == {"v": 2}

    async def test_snapshot_of_10000_bytes(self, store):
        state = {"blob": "x" * 10_000}
        await store.save_snapshot(S, 1, state)
        assert (await store.load_snapshot(S)).state == state

    async def test_snapshot_delete_single_and_bulk(self, store):
        for seq in (10, 20, 30):
            await store.save_snapshot(S, seq, {"at": seq})
        await store.delete_snapshots(S, 10)
        assert (await store.load_snapshot(S, 15)) is None
        assert (await store.load_snapshot(S)).seq == 30
        await store.delete_snapshots(S)
        assert await store.load_snapshot(S) is None

    async def test_snapshot_retention_keeps_newest(self, store):
        for seq in (1, 2, 3, 4, 5):
            await store.save_snapshot(S, seq, {"at": seq}, keep=2)
        assert (await store.load_snapshot(S)).seq == 5
        assert (await store.load_snapshot(S, 4)).seq == 4
        assert await store.load_snapshot(S, 3) is None

    async def test_snapshot_invalid_seq(self, store):
        with pytest.raises(ValueError):
            await store.save_snapshot(S, 0, {})

    # ------------------------------------------------------------ concurrency

    async def test_concurrent_writers_distinct_streams(self, store):
        writers, per = 32, 50

        async def writer(w: int) -> None:
            for i in range(per):
                await store.append(f"c/{w}", [ev(i)], i)

        await asyncio.gather(*(writer(w) for w in range(writers)))
        positions = []
        for w in range(writers):
            events = await store.read(f"c/{w}")
            assert seqs(events) == list(range(1, per + 1))
            assert [e.data["i"] for e in events] == list(range(per))
            positions += [e.position for e in events]
        assert len(set(positions)) == writers * per
        log = await store.read_all(1, writers * per + 10)
        assert len(log) == writers * per

    async def test_concurrent_writers_one_stream_exactly_one_wins(self, store):
        contenders, rounds = 8, 25
        for version in range(rounds):
            outcomes = await asyncio.gather(
                *(store.append(S, [ev(c)], version) for c in range(contenders)),
                return_exceptions=True)
            winners = [o for o in outcomes if not isinstance(o, BaseException)]
            losers = [o for o in outcomes if isinstance(o, BaseException)]
            assert len(winners) == 1, outcomes
            assert all(isinstance(o, WrongExpectedVersion) for o in losers)
            assert winners[0].first_seq == version + 1
        assert seqs(await store.read(S)) == list(range(1, rounds + 1))

    async def test_closed_store_refuses_writes(self, store, reopen):
        other = await reopen()
        await other.close()
        with pytest.raises(StoreError):
            await other.append(S, [ev(1)], 0)

    # ------------------------------------------------------------ several processes

    def test_processes_contending_never_fork_and_share_a_gap_free_log(self, contract_url):
        """Three processes (as three hosts would) race on one stream while group-committing to
        their own: every seq has exactly one writer, and the global log stays gap-free and in
        commit order."""
        if not self.shared_across_processes:
            pytest.skip("this backend's data lives in one process")
        rounds, own, procs_n = 150, 8, 3
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        procs = [ctx.Process(target=_contend, args=(contract_url, "x/1", rounds, own, w, out))
                 for w in range(procs_n)]
        for p in procs:
            p.start()
        wins = [out.get(timeout=180) for _ in procs]
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0

        async def check() -> None:
            store = open_store(contract_url)
            try:
                events = await store.read("x/1")
                assert seqs(events) == list(range(1, len(events) + 1))
                # a failed attempt needs another's success inside its window: wins >= rounds
                assert len(events) == sum(wins) >= rounds
                log = await store.read_all(1, 100_000)
                assert [e.position for e in log] == list(range(1, len(log) + 1))
                assert len(log) == sum(wins) + procs_n * rounds * own
                per_stream: dict[str, list[int]] = {}
                for e in log:
                    per_stream.setdefault(e.stream, []).append(e.seq)
                assert all(s == list(range(1, len(s) + 1)) for s in per_stream.values())
            finally:
                await store.close()

        asyncio.run(check())
