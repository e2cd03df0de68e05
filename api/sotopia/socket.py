"""The simulation WebSocket: /ws/simulation?token=... (and the seed's /ws/simulate).

Frames are {"type", "data"}.
- In: START_SIM {env_id, agent_ids, agent_models?, evaluator_model?,
  evaluation_dimension_list_name?, max_turns?, tag?, human_agent_ids?}; END_SIM or FINISH_SIM
  (either stops the running episode); CLIENT_MSG {agent_id?, action_type?, argument | content,
  to?} (a human's turn, for an agent START_SIM marked human: its model "human" or its id in
  human_agent_ids).
- Out: SERVER_MSG {"type": "messages", "messages": <EpisodeLog so far>} after the opening
  observations and after every step (with "waiting_for": <agent id> while a human's turn is
  awaited), a last one with the evaluation; then END_SIM {}, and nothing after it. ERROR
  {"type": <code>, "details", "content"}; an ERROR that ends a simulation
  (SIMULATION_INTERRUPTED after a stop, SIMULATION_ERROR when the episode or its evaluation
  failed) comes after the last SERVER_MSG and before END_SIM.
  FINISH_SIM is never sent: the seed's table swaps the directions of END_SIM and FINISH_SIM,
  and Sotopia's own page (the real client) crashes on a FINISH_SIM from the server, whose
  original never sends one. Where the seed and the clients disagree, the clients win.
The socket takes another START_SIM after the end. The episode runs in its actor: a client that
leaves does not stop it, and it is readable from /episodes.

Tokens: any non-empty token, or one of SOTOPIA_WS_TOKENS (comma-separated) when that is set.
One socket per token at a time (a second is refused at the handshake, 1008 "Token is active
already", as the real server does); the token is freed when its socket closes, however it
closes. Tokens are held per replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from typing import Any

from fastapi import APIRouter, WebSocket
from pydantic import ValidationError

from actors.sotopia.episode import EPISODE, episode
from api.commands import Refused, ask
from api.runtime import Runtime, current, section
from api.sotopia import service
from api.sotopia.settings import SotopiaSettings
from api.sotopia.views import episode_log
from api.ws import WebSocketSession
from runtime.client import ActorError, OutcomeUnknown, Unavailable
from schemas.sotopia import ErrorData, StartSim

__all__ = ["router"]

log = logging.getLogger("ray.serve")
router = APIRouter()
_ACTIVE: set[str] = set()
_ENDS = ("evaluated", "evaluation_failed", "stopped", "failed")
#: how an episode that ended badly is reported: the ERROR frame before the end frames
_FAILURES = {"stopped": ("SIMULATION_INTERRUPTED", "The simulation was interrupted: {}"),
             "failed": ("SIMULATION_ERROR", "Error running simulation: {}"),
             "evaluation_failed": ("SIMULATION_ERROR", "The evaluation failed: {}")}


def error(code: str, text: str) -> dict[str, Any]:
    return {"type": "ERROR", "data": ErrorData(type=code, details=text,
                                               content=text).model_dump()}


def _token_ok(token: str) -> bool:
    allowed = section(SotopiaSettings).ws_tokens
    if not token:
        return False
    return not allowed or any(hmac.compare_digest(token.encode(), t.encode())
                              for t in allowed)


class _Simulation:
    """One socket's session: at most one episode followed at a time."""

    def __init__(self, rt: Runtime, session: WebSocketSession) -> None:
        self.rt = rt
        self.session = session
        self.episode_id: str | None = None
        self.agent_ids: list[str] = []
        self.follower: asyncio.Task | None = None
        self.tasks: set[asyncio.Task] = set()

    @property
    def running(self) -> bool:
        return self.follower is not None and not self.follower.done()

    def end(self, *frames: dict[str, Any]) -> None:
        for frame in frames:
            self.session.push(frame)
        self.session.push({"type": "END_SIM", "data": {}})  # the last frame of a simulation

    async def handle(self, frame: Any) -> None:
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            self.session.push(error("OTHER", 'a frame is {"type": ..., "data": {...}}'))
            return
        kind, payload = frame["type"], frame.get("data")
        if kind == "START_SIM":
            await self.start(payload)
        elif kind in ("END_SIM", "FINISH_SIM"):
            await self.stop()
        elif kind == "CLIENT_MSG":
            await self.client_message(payload)
        else:
            self.session.push(error("OTHER", f"unknown frame type {kind!r}: send START_SIM, "
                                             "CLIENT_MSG, END_SIM or FINISH_SIM"))

    async def start(self, payload: Any) -> None:
        if self.running:
            self.session.push(error("SIMULATION_ALREADY_STARTED",
                                    f"episode {self.episode_id} is running on this socket"))
            return
        try:
            start = StartSim.model_validate(payload if isinstance(payload, dict) else {})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'data'}: {e['msg']}"
                                 for e in exc.errors())
            self.session.push(error("OTHER", f"START_SIM: {problems}"))
            return
        agent_models = start.agent_models or ["gpt-4o-mini"] * len(start.agent_ids)
        humans = [m == "human" or a in start.human_agent_ids
                  for a, m in zip(start.agent_ids, agent_models)]
        try:
            episode_id = await service.start_simulation(
                self.rt, start.env_id, start.agent_ids, [start.evaluator_model, *agent_models],
                max_turns=start.max_turns, tag=start.tag,
                dimension_list=start.evaluation_dimension_list_name, humans=humans)
        except service.Missing as exc:
            self.session.push(error("RESOURCE_NOT_FOUND", exc.message))
            return
        except Refused as exc:
            self.session.push(error("SIMULATION_ERROR", f"could not start: {exc.message}"))
            return
        self.episode_id, self.agent_ids = episode_id, list(start.agent_ids)
        self.follower = self._background(self.follow(episode_id))

    async def follow(self, episode_id: str) -> None:
        """The episode's log, live, as SERVER_MSG frames, until it ends."""
        try:
            await self._follow(episode_id)
        except (ActorError, OutcomeUnknown, Unavailable) as exc:
            log.warning("sotopia socket: following episode %s failed: %s", episode_id, exc)
            self.end(error("SIMULATION_ERROR", f"Error following the simulation: {exc}"))

    async def _follow(self, episode_id: str) -> None:
        ref = self.rt.client.ref(EPISODE, episode_id)
        state = episode.initial_state()
        async with contextlib.aclosing(ref.asubscribe(1)) as events:
            async for _what, event in events:
                state = episode.apply(state, event)
                if event.type == "cut":  # its host died: carry it on from its last step
                    self._background(service.resume_if_due(self.rt, episode_id))
                if event.type not in ("started", "turn", "human_turn", "awaiting_human",
                                      *_ENDS):
                    continue
                failure = _FAILURES.get(event.type)
                if failure is not None:  # why (after the evaluation's rows), then the end frames
                    code, text = failure
                    last = ([self._messages(episode_id, state)]
                            if event.type == "evaluation_failed" else [])
                    self.end(*last, error(code, text.format(state["error"])))
                    return
                self.session.push(self._messages(episode_id, state))
                if event.type in _ENDS:
                    self.end()
                    return

    def _messages(self, episode_id: str, state: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {"type": "messages",
                                "messages": episode_log(episode_id, state).model_dump(
                                    mode="json")}
        if state["waiting_for"] is not None and state["status"] == "running":
            body["waiting_for"] = state["setup"]["agent_ids"][state["waiting_for"]]
        return {"type": "SERVER_MSG", "data": body}

    async def stop(self) -> None:
        if not self.running or self.episode_id is None:
            self.session.push(error("SIMULATION_NOT_STARTED", "no simulation is running on "
                                                              "this socket"))
            return
        ref = self.rt.client.ref(EPISODE, self.episode_id)
        answer = await ref.acancel("interrupted by the client")
        if not answer.get("cancelled"):  # nothing running: waiting for a human, or between
            with contextlib.suppress(ActorError, OutcomeUnknown, Unavailable):
                await ref.aask({"type": "stop", "reason": "interrupted by the client"})

    async def client_message(self, payload: Any) -> None:
        if not self.running or self.episode_id is None:
            self.session.push(error("SIMULATION_NOT_STARTED", "CLIENT_MSG needs a running "
                                                              "simulation: send START_SIM"))
            return
        payload = payload if isinstance(payload, dict) else {}
        agent_id = payload.get("agent_id")
        action = {"action_type": payload.get("action_type", "speak"),
                  "argument": payload.get("argument", payload.get("content", "")),
                  "to": payload.get("to") or []}
        if agent_id is not None and agent_id not in self.agent_ids:
            self.session.push(error("OTHER", f"agent_id {agent_id!r} is not in this "
                                             "simulation"))
            return
        # The turn runs the episode on to the next human turn or its end: in the background,
        # so that this socket still reads (an END_SIM meanwhile must stop it at once).
        self._background(self._act(self.episode_id, agent_id, action))

    async def _act(self, episode_id: str, agent_id: str | None, action: dict[str, Any]
                   ) -> None:
        ref = self.rt.client.ref(EPISODE, episode_id)
        try:
            if agent_id is None:
                _, state = await ref.astate()
                agent = state["waiting_for"]
            else:
                agent = self.agent_ids.index(agent_id)
            await ask(ref, {"type": "act", "agent": agent, "action": action})
        except Refused as exc:
            self.session.push(error("OTHER", exc.message))
        except (ActorError, OutcomeUnknown, Unavailable) as exc:  # reading whose turn it is
            self.session.push(error("OTHER", str(exc)))

    def _background(self, work: Any) -> asyncio.Task:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("sotopia socket: %s", task.exception(), exc_info=task.exception())


async def _serve(websocket: WebSocket) -> None:
    token = websocket.query_params.get("token") or ""
    if token in _ACTIVE:
        await websocket.close(code=1008, reason="Token is active already")
        return
    # Every SERVER_MSG holds the whole log so far: few of them may wait unread.
    session = WebSocketSession(websocket, lambda code, text: error("OTHER", text),
                               text_only=True, max_unread=32)
    if not _token_ok(token):
        await session.accept()
        session.push(error("NOT_AUTHORIZED", "a valid token is required: ?token=..."))
        await session.close(1008, "Invalid token")
        await session.finish()
        return
    _ACTIVE.add(token)
    try:
        await session.accept()
        simulation = _Simulation(current(), session)

        async def read() -> None:
            while (frame := await session.receive()) is not None:
                await simulation.handle(frame)

        try:
            await session.run_until_gone(read(), reading=True)
        finally:
            for task in list(simulation.tasks):
                task.cancel()
    finally:
        _ACTIVE.discard(token)


for _path in ("/ws/simulation", "/ws/simulate", "/ws/simulate/", "/ws/simulation/"):
    router.add_api_websocket_route(_path, _serve)
