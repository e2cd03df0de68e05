"""A long thread (issue 10, part 6): 2,000 messages and 5 MB of uploaded documents. Activation
time (snapshot + tail, as a host does; and the whole log folded, as after a snapshot format
change) and snapshot size, before and after.

Before: the layout and fold as of commit 2a836dd, rebuilt here as the baseline (documents in
the thread's own log and state; every fold copies the message list). After: the thread kind as
it is (documents in their own stream; messages folded in place)."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import actors  # noqa: F401  (registers the kinds)
from actors.documents import documents_id
from actors.gpts.messages import add_messages
from actors.thread import thread
from bench.common import report, scratch_dir
from runtime.entity import EntityKind
from runtime.events import NewEvent, encode
from runtime.host import replay
from runtime.stores.sqlite import SQLiteEventStore

MESSAGES = 2_000
DOC_BYTES = 5 * 1024 * 1024
CHUNK = 1_000


def _before_kind() -> EntityKind:
    """The thread fold of 2a836dd, for the event types this bench writes."""
    kind = EntityKind("thread", lambda: {"exists": False, "owner": None, "messages": [],
                                         "next": [], "checkpoints": 0, "run": None,
                                         "documents": [], "run_ids": []})
    kind.event("created")(lambda s, d: {**s, "exists": True, "owner": d["user_id"]})
    kind.event("run_started")(lambda s, d: {
        **s, "next": d["next"], "checkpoints": s["checkpoints"] + 1,
        "run": {"id": d["run_id"], "status": "running"},
        "run_ids": [*s["run_ids"], d["run_id"]]})
    kind.event("messages_written")(lambda s, d: {
        **s, "messages": add_messages(s["messages"], d["messages"]), "next": d["next"],
        "checkpoints": s["checkpoints"] + 1})
    kind.event("run_finished")(lambda s, d: {**s, "run": {"id": d["run_id"],
                                                          "status": d["outcome"]}})
    kind.event("documents_ingested")(lambda s, d: {
        **s, "documents": [*s["documents"], *d["documents"]]})
    return kind


def _documents(namespace: str) -> list[NewEvent]:
    per_file = DOC_BYTES // CHUNK // 5
    return [NewEvent("documents_ingested", {"documents": [
        {"id": uuid.uuid4().hex, "source": f"file{f}.txt", "namespace": namespace,
         "text": "lorem ipsum dolor sit amet " * (CHUNK // 27)} for _ in range(per_file)],
        "at": "now", "user_id": "u"}) for f in range(5)]


def _conversation(messages: int) -> list[NewEvent]:
    out: list[NewEvent] = []
    for i in range(messages // 2):
        run = uuid.uuid4().hex
        out += [NewEvent("run_started", {"run_id": run, "next": ["__start__"]}),
                NewEvent("messages_written", {"messages": [
                    {"type": "human", "id": f"h{i}", "content": f"question {i} " * 20}],
                    "next": ["chatbot"], "source": "input"}),
                NewEvent("messages_written", {"messages": [
                    {"type": "ai", "id": f"a{i}", "content": f"answer {i} " * 60}],
                    "next": [], "source": "node"}),
                NewEvent("run_finished", {"run_id": run, "outcome": "done"})]
    return out


async def _write(store: SQLiteEventStore, stream: str, events: list[NewEvent]) -> None:
    for start in range(0, len(events), 500):
        await store.append(stream, events[start:start + 500], -1)


async def _snapshot(store: SQLiteEventStore, kind: EntityKind, stream: str) -> int:
    """The newest snapshot a host would have written (every 100 events): its size."""
    state, version, _ = await replay(store, kind, stream, None)
    at = version - version % 100
    state, _, _ = await replay(store, kind, stream, at)
    blob = encode(kind.to_snapshot(state))
    await store.save_snapshot(stream, at, kind.to_snapshot(state), version=kind.snapshot_version)
    return len(blob)


async def _activate(store: SQLiteEventStore, kind: EntityKind, stream: str, rounds: int
                    ) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        await replay(store, kind, stream, None)
        best = min(best, time.perf_counter() - t0)
    return best


async def _full_fold(store: SQLiteEventStore, kind: EntityKind, stream: str) -> float:
    events = await store.read(stream)
    t0 = time.perf_counter()
    kind.fold(kind.initial_state(), events)
    return time.perf_counter() - t0


async def _main(quick: bool) -> None:
    messages = 400 if quick else MESSAGES
    store = SQLiteEventStore(os.path.join(scratch_dir(), "events.db"))
    created = NewEvent("created", {"user_id": "u", "assistant_id": None, "name": "t",
                                   "metadata": None, "at": "now"})
    talk = _conversation(messages)
    # before: the documents in the thread's own log, early on (uploaded, then talked about)
    await _write(store, "thread/before", [created, *_documents("before"), *talk])
    # after: the same conversation; the documents in their own stream
    await _write(store, "thread/after", [created, *talk])
    await _write(store, "documents/" + documents_id("thread", "after", 1),
                 _documents("after"))
    old = _before_kind()
    size_before = await _snapshot(store, old, "thread/before")
    size_after = await _snapshot(store, thread, "thread/after")
    act_before = await _activate(store, old, "thread/before", 5)
    act_after = await _activate(store, thread, "thread/after", 5)
    fold_before = await _full_fold(store, old, "thread/before")
    fold_after = await _full_fold(store, thread, "thread/after")
    await store.close()

    n = f"{messages:,} msgs + {DOC_BYTES >> 20} MB docs"
    report(f"thread snapshot, {n} (before)", size_before / 1024, "KiB")
    report(f"thread snapshot, {n} (after)", size_after / 1024, "KiB", size_before / 1024,
           "before")
    report(f"thread activation, {n} (before)", act_before * 1000, "ms")
    report(f"thread activation, {n} (after)", act_after * 1000, "ms", act_before * 1000,
           "before")
    report(f"thread fold of the whole log, {n} (before)", fold_before * 1000, "ms")
    report(f"thread fold of the whole log, {n} (after)", fold_after * 1000, "ms",
           fold_before * 1000, "before")


def run(quick: bool = False) -> None:
    asyncio.run(_main(quick))
