"""sotopia_batch: a batch of Sotopia episodes, run by the batch entity itself in its host.
Its log says which episodes belong to it (planned), each run of it, and how every episode
ended (episode_done, in groups); progress and results are folds of it.

Every episode has a fixed id (``<batch>.<index>``, ``.r<k>`` for a retry), so running the
batch again, after its driver, its host or the whole service was killed, starts only the
episodes with no result: a finished one is never run twice, and one cut mid-way is resumed
from its last committed turn (its own log says cut, then resumed; the result says resumed).

Commands
  run     {"plan"?, "concurrency"?, "resume"?} -> planned (the first time), run_started,
          episode_done..., run_finished. Later runs may omit the plan; a different plan is
          refused (conflict). Without a concurrency a run keeps its last run's. With
          "resume" (the sweep's, after a crash) it does nothing to a batch that was stopped or
          has finished: a stop is final until someone starts the batch again.
          Progress: {"accepted"} then {"done", "failed", "running", "total"} as results land.
  stop    {"reason"?} -> run_stopped unless the batch has finished or stopped already. Sent
          right after the platform's cancel (which stops a running run and its episodes under
          way, at once), it queues behind the run being cancelled, so the log says stopped
          however the cancel landed.
A run cut by a crash is closed at the next activation with run_cut; ``run`` goes on with it.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Any

from actors.sotopia import episode as episodes
from actors.sotopia.episode import EPISODE, FINISHED, outcome_of
from actors.sotopia.profiles import AGENT, SCENARIO
from runtime.entity import Context, EntityKind, Fenced, Rejected
from runtime.events import NewEvent, stream_id
from runtime.registry import register

__all__ = ["BATCH", "DEFAULT_CONCURRENCY", "batch", "episode_id_of", "progress_of", "same_plan",
           "should_resume"]

BATCH = "sotopia_batch"
MAX_CONCURRENCY = 5_000
DEFAULT_CONCURRENCY = 100
_GROUP = 200  # results per episode_done event at most
#: seconds a command may go without anything new in its episode's log before it is sent again
STALL = 60.0
#: seconds between looks at the log of an episode whose command is under way
LOOK = 10.0


def initial() -> dict[str, Any]:
    return {"plan": None, "status": "new", "done": {}, "runs": 0, "cuts": 0, "error": None,
            "concurrency": None, "tally": _tally(())}


def _at_rest(state: dict[str, Any]) -> bool:
    """Nothing runs on it: finished, stopped, or never planned (a read of an unknown id)."""
    return state["plan"] is None or state["status"] in ("finished", "stopped")


#: snapshot format 2 carries the tally (format 1 is upcast by counting its results)
batch = register(EntityKind(BATCH, initial, snapshot_every=200, snapshot_version=2,
                            at_rest=_at_rest))


def _tally(results: Any) -> dict[str, int]:
    """Results counted as progress counts them, kept in the state as they land so that
    progress is three numbers, not a pass over 10,000 results."""
    tally = {"completed": 0, "failed": 0, "resumed": 0}
    for result in results:
        _count(tally, result, 1)
    return tally


def _count(tally: dict[str, int], result: dict[str, Any], sign: int) -> None:
    tally["completed" if result["status"] == "completed" else "failed"] += sign
    if result.get("resumed"):
        tally["resumed"] += sign


@batch.snapshot_upcaster(1)
def _counted(state: dict[str, Any]) -> dict[str, Any]:
    state["tally"] = _tally(state["done"].values())
    return state


def episode_id_of(batch_id: str, index: int, attempt: int = 0) -> str:
    return f"{batch_id}.{index}" + (f".r{attempt}" if attempt else "")


def progress_of(state: dict[str, Any]) -> dict[str, Any]:
    plan = state["plan"] or {"episodes": []}
    tally = state["tally"]
    return {"status": state["status"], "total": len(plan["episodes"]),
            "done": tally["completed"], "failed": tally["failed"],
            "resumed": tally["resumed"], "runs": state["runs"], "cuts": state["cuts"]}


@batch.query("progress")
def progress_query(state: dict[str, Any], args: Any) -> dict[str, Any] | None:
    """Progress read where the batch runs; None for a batch that was never planned."""
    return progress_of(state) if state["plan"] is not None else None


def should_resume(status: str, running: str | None) -> bool:
    """The rule for carrying a batch on without being asked (the resume sweep): cut, or
    running by its log with nothing running on it. A stopped or finished one never (and its
    run command, sent with "resume", refuses it again should the log have moved on)."""
    return status == "cut" or (status == "running" and running is None)


def same_plan(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a["episodes"] == b["episodes"] and all(
        a.get(k) == b.get(k) for k in ("max_turns", "tag", "dimension_list", "attempts"))


@batch.command("run")
async def run(state: dict, cmd: dict, ctx: Context) -> NewEvent | None:
    if cmd.get("resume") and state["status"] in ("stopped", "finished"):
        return None  # a stop is final until someone starts the batch again
    concurrency = cmd.get("concurrency")
    if concurrency is None:  # a run goes on as the last was told to
        concurrency = state.get("concurrency") or DEFAULT_CONCURRENCY
    if not isinstance(concurrency, int) or not 1 <= concurrency <= MAX_CONCURRENCY:
        raise Rejected(f"concurrency is 1 to {MAX_CONCURRENCY}", code="invalid")
    plan = cmd.get("plan")
    if state["plan"] is None:
        if not isinstance(plan, dict) or not plan.get("episodes"):
            raise Rejected(f"batch {ctx.entity_id} does not exist: the first run needs a "
                           "plan with episodes", code="not_found")
        await ctx.commit(NewEvent("planned", {"plan": plan}))
    elif plan is not None and not same_plan(plan, state["plan"]):
        raise Rejected(f"batch {ctx.entity_id} exists with another plan: run it again "
                       "without one, or choose another batch id", code="conflict")
    await ctx.commit(NewEvent("run_started", {"concurrency": concurrency,
                                              "at": time.time()}))
    ctx.emit({"accepted": ctx.entity_id})
    return await _Run(ctx, concurrency).go()


@batch.command("stop")
def stop(state: dict, cmd: dict, ctx: Context) -> NewEvent | None:
    # No run is under way while this runs (one command at a time): a status of "running"
    # here is a run whose cancel ended it before it could say so.
    if state["status"] in ("new", "finished", "stopped"):
        return None
    return NewEvent("run_stopped", {"reason": str(cmd.get("reason") or "stopped")})


@batch.recovery
def close_cut(state: dict) -> NewEvent | None:
    if state["status"] == "running":
        return NewEvent("run_cut", {"reason": "the server running this batch stopped before "
                                              "it finished"})
    return None


class _Run:
    """One run: a pool of ``concurrency`` workers drives the episodes without a result; one
    committer writes the results in groups (one append for many episodes)."""

    def __init__(self, ctx: Context, concurrency: int) -> None:
        self.ctx = ctx
        self.plan = ctx.state["plan"]
        self.concurrency = concurrency
        self.results: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.running: set[str] = set()
        self.records: dict[tuple[str, str], dict[str, Any]] = {}

    async def go(self) -> NewEvent:
        done = self.ctx.state["done"]
        todo = collections.deque(e for e in self.plan["episodes"] if str(e["i"]) not in done)
        workers = [asyncio.ensure_future(self._worker(todo))
                   for _ in range(min(self.concurrency, len(todo)))]
        committer = asyncio.ensure_future(self._committer())
        try:
            await asyncio.gather(*workers)
            await self.results.join()
        except asyncio.CancelledError:
            for w in workers:
                w.cancel()
            # stop what runs for us; their own logs say stopped
            await asyncio.gather(*(self._episode(e).acancel("the batch was stopped")
                                   for e in list(self.running)), return_exceptions=True)
            if self.ctx.cancelled is None:
                raise  # the host is stopping: recovery closes the run (run_cut)
            await self._flush()
            return NewEvent("run_stopped", {"reason": self.ctx.cancelled})
        finally:
            committer.cancel()
        await self._flush()
        summary = progress_of(self.ctx.state)
        return NewEvent("run_finished", {"completed": summary["done"],
                                         "failed": summary["failed"]})

    def _episode(self, episode_id: str) -> Any:
        return self.ctx.services.entities.ref(EPISODE, episode_id)

    async def _worker(self, todo: collections.deque) -> None:
        while todo:
            entry = todo.popleft()
            result = await self._one(entry)
            self.results.put_nowait(result)

    async def _one(self, entry: dict[str, Any]) -> dict[str, Any]:
        """An episode to its end, retried (as a new episode) when it failed, up to the plan's
        attempts; the result of its last attempt."""
        attempts = int(self.plan.get("attempts", 2))
        result: dict[str, Any] = {}
        earlier: list[str] = []  # how the attempts before the last ended
        for attempt in range(attempts):
            episode_id = episode_id_of(self.ctx.entity_id, entry["i"], attempt)
            self.running.add(episode_id)
            try:
                result = await self._drive(entry, episode_id)
            except (Fenced, asyncio.CancelledError):
                raise
            except Exception as exc:  # noqa: BLE001 - one episode never crashes the batch
                result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
            finally:
                self.running.discard(episode_id)
            result.update({"i": entry["i"], "episode": episode_id, "attempt": attempt})
            if result["status"] in ("completed", "stopped"):
                break
            earlier.append(f"{episode_id}: {result['status']}: {result.get('error')}")
        if earlier[:result["attempt"]]:
            result["earlier"] = earlier[:result["attempt"]]
        return result

    async def _drive(self, entry: dict[str, Any], episode_id: str) -> dict[str, Any]:
        """The episode to its end, judged by its state, not by whether a call returned: the
        command is sent and the state it leaves is looked at until the episode has ended. A
        call that is gone (its host died) or stalls (nothing new in the log for STALL
        seconds) is sent again: start on a started episode is refused, resume on a finished
        one does nothing, so sending twice is safe. While a call is under way only the log's
        version is looked at (one indexed read); the state comes with the call's answer, and
        is replayed from the log only when there is none (a conflict, a lost host, a stall)."""
        services, ref = self.ctx.services, self._episode(episode_id)
        stream = stream_id(EPISODE, episode_id)
        resumed, call = False, None
        seen, quiet_since = -1, time.monotonic()
        try:
            while True:
                if call is not None and not call.done():
                    # under way: wake when it answers, or now and then to see the log move
                    await asyncio.wait({call}, timeout=LOOK)
                    if not call.done():
                        version = await services.store.last_version(stream)
                        if version != seen:
                            seen, quiet_since = version, time.monotonic()
                        if time.monotonic() - quiet_since < STALL:
                            continue
                        call.cancel()  # stalled: stop waiting on it, look again
                        call, quiet_since = None, time.monotonic()
                # the command's answer carries the state it left (a refusal other than a
                # conflict is this episode's failure); without one, the log is read
                state = call.result() if call is not None else None
                call = None
                if state is None:
                    state = await services.read_state(EPISODE, episode_id)
                status = outcome_of(state)
                if status in FINISHED:
                    break
                if status == "awaiting_human":  # no human plays in a batch
                    return {"status": "failed", "error": "the episode waits for a human"}
                if state["setup"] is None and "fork" in entry:  # a batch of forks
                    call = asyncio.ensure_future(self._fork(entry["fork"], episode_id))
                elif state["setup"] is None:  # the start never landed
                    call = asyncio.ensure_future(_ask(ref, {
                        "type": "start", "setup": await self._setup(entry)}))
                elif status == "forked":  # our fork, held for us: on with the entry's models
                    call = asyncio.ensure_future(_ask(ref, {"type": "resume",
                                                            "models": entry["models"]}))
                elif await episodes.due(episodes.should_resume, status, ref):
                    resumed = True  # cut by a crash (or its host died): on from its last turn
                    call = asyncio.ensure_future(_ask(ref, {"type": "resume",
                                                            "models": entry["models"]}))
                else:  # another run of this batch still drives it
                    await asyncio.sleep(LOOK)
        finally:
            if call is not None and not call.done():
                call.cancel()  # our wait only: the command runs on in its host
        return {"status": status, "resumed": resumed or _cut_since_start(state),
                "rewards": state["rewards"],
                "turns": len(state["steps"]), "model_errors": state["model_errors"],
                **({"error": state["error"]} if state["error"] else {})}

    async def _fork(self, fork: dict[str, Any], episode_id: str) -> None:
        """``episode_id`` made a copy of the source episode's log up to its ``turn``-th turn
        (held as forked; the next look resumes it with the entry's models). A copy made
        before a crash is there already (exists): the next look finds it held, or under way.
        None: the state is read from the log."""
        from runtime.client import ActorError, OutcomeUnknown, Unavailable

        source = fork["episode"]
        version = await self._fork_version(source, fork["turn"])
        try:
            await self._episode(source).afork(version, episode_id)
        except ActorError as exc:
            if exc.code != "exists":
                raise
        except (OutcomeUnknown, Unavailable):  # its host was lost: the next look sees
            await asyncio.sleep(0.5)
        return None

    async def _fork_version(self, source: str, turn: int) -> int:
        """The source's version just after its ``turn``-th turn (its first event for 0)."""
        events = await self.ctx.services.store.read(stream_id(EPISODE, source), 1)
        turns = [e.seq for e in events if e.type in ("turn", "human_turn")]
        if not events or turn > len(turns):
            raise LookupError(f"episode {source} has {len(turns)} turns, not {turn}")
        return turns[turn - 1] if turn else 1

    async def _setup(self, entry: dict[str, Any]) -> dict[str, Any]:
        async def record(kind: str, pk: str) -> dict[str, Any]:
            if (kind, pk) not in self.records:
                found = (await self.ctx.services.read_state(kind, pk))["record"]
                if found is None:
                    raise LookupError(f"{kind} {pk} not found")
                self.records[(kind, pk)] = found
            return self.records[(kind, pk)]

        plan = self.plan
        return episodes.setup_of(
            entry["env"], await record(SCENARIO, entry["env"]), entry["agents"],
            [await record(AGENT, a) for a in entry["agents"]], entry["models"],
            plan["dimensions"], max_turns=plan["max_turns"], tag=plan.get("tag", ""),
            dimension_list=plan["dimension_list"], batch=self.ctx.entity_id)

    async def _committer(self) -> None:
        while True:
            first = await self.results.get()
            group = [first]
            while len(group) < _GROUP and not self.results.empty():
                group.append(self.results.get_nowait())
            try:
                await self._commit(group)
            finally:
                for _ in group:
                    self.results.task_done()

    async def _commit(self, group: list[dict[str, Any]]) -> None:
        await self.ctx.commit(NewEvent("episode_done", {"results": group}))
        self.ctx.emit({**progress_of(self.ctx.state), "running": len(self.running)})

    async def _flush(self) -> None:
        """Results already in the queue when the run ends or stops."""
        group = []
        while not self.results.empty():
            group.append(self.results.get_nowait())
            self.results.task_done()
        if group:
            await self._commit(group)


def _cut_since_start(state: dict[str, Any]) -> bool:
    """Whether the episode was cut and went on since it started (or was forked): whoever
    resumed it, this run, an earlier one or the resume sweep, which may reach a cut episode
    first when a host dies."""
    cut = False
    for entry in state.get("history") or []:
        if entry[0] == "forked":
            cut = False  # the source's cuts are not this episode's
        elif entry[0] == "cut":
            cut = True
    return cut


async def _ask(ref: Any, command: dict[str, Any]) -> dict[str, Any] | None:
    """A command to an episode, to its end: the state it left the episode in (so the batch
    reads no log for an episode that ended under its command). A conflict (it started
    meanwhile) or a lost host is left to the caller's next look at the episode's log (None)."""
    from runtime.client import ActorError, OutcomeUnknown, Unavailable

    try:
        return (await ref.aask(command, with_state=True, brief=True)).state
    except ActorError as exc:
        if exc.code != "conflict":
            raise
    except (OutcomeUnknown, Unavailable):
        await asyncio.sleep(0.5)
    return None


# ------------------------------------------------------------------ events


@batch.event("planned")
def planned(state: dict, data: dict) -> dict:
    state["plan"] = data["plan"]
    return state


@batch.event("run_started")
def run_started(state: dict, data: dict) -> dict:
    state["status"], state["runs"] = "running", state["runs"] + 1
    state["concurrency"] = data["concurrency"]
    return state


@batch.event("episode_done")
def episode_done(state: dict, data: dict) -> dict:
    done, tally = state["done"], state["tally"]
    for result in data["results"]:
        key = str(result["i"])
        if key in done:  # a later run's result replaces an earlier one (stopped, then run)
            _count(tally, done[key], -1)
        done[key] = result
        _count(tally, result, 1)
    return state


@batch.event("run_finished")
def run_finished(state: dict, data: dict) -> dict:
    state["status"] = "finished"
    return state


@batch.event("run_cut")
def run_cut(state: dict, data: dict) -> dict:
    state["status"], state["cuts"] = "cut", state["cuts"] + 1
    return state


@batch.event("run_stopped")
def run_stopped(state: dict, data: dict) -> dict:
    state["status"], state["error"] = "stopped", data["reason"]
    return state
