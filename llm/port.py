"""The model port: what every API family asks of a language model, whatever serves it.

In: chat messages (OpenAI's role/content shape, the lingua franca of providers), tools the model
may call, and optionally a JSON schema its answer must satisfy. Out: text, tool calls, or a
schema-valid object, with streaming deltas on the way. Entities call models only through
``Model.complete``; providers only turn a request into deltas, so a new provider is one small
class and never touches accumulation, validation or the API families.
"""

from __future__ import annotations

import contextlib
import functools
import json
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Protocol

import jsonschema
import jsonschema_rs
import orjson
from pydantic_core import from_json
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from runtime.slots import Slots

__all__ = ["Delta", "Model", "ModelError", "ModelGate", "ModelRequest", "ModelResult", "Provider",
           "ToolCall", "ToolCallDelta", "ToolSpec"]


@functools.lru_cache(maxsize=256)
def _compiled(key: bytes) -> tuple[Any, Any]:
    schema = orjson.loads(key)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)  # once per schema, not once per answer
    return jsonschema_rs.validator_for(schema), cls(schema)


def _validator(schema: dict[str, Any]) -> tuple[Any, Any]:
    """Two validators compiled once per schema (by its canonical JSON): jsonschema_rs checks
    every answer (jsonschema.validate re-checked the schema itself on each call, most of a
    batch's CPU; a compiled jsonschema validator still cost ~7% of a host), and jsonschema
    words the error when an answer misses."""
    return _compiled(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS))


class ModelError(Exception):
    """The model could not answer (provider unreachable, refused, or off-schema output).
    ``failures``: every attempt's error, once the retry policy gave up."""

    failures: list[str]

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.failures = []


#: The one retry policy of model calls (tenacity): a call that fails before anything of it
#: reached the caller is tried again after 0.5 s, then 1 s (with a little jitter), up to a
#: provider's attempts (its "max_retries" + 1 in ACTORLOG_MODELS; 3 by default). Providers'
#: own clients do not retry (the openai SDK's max_retries is 0), so a call is never tried
#: attempts x attempts times.
RETRY_WAIT = wait_exponential_jitter(multiplier=0.5, max=8.0, jitter=0.1)
DEFAULT_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {
        "type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]})


@dataclass(slots=True)
class ToolCall:
    id: str
    name: str
    args: dict[str, Any]


@dataclass(slots=True)
class ToolCallDelta:
    """A piece of a tool call as providers stream it: ``index`` says which call, ``args`` is a
    fragment of its JSON arguments text."""

    index: int
    id: str | None = None
    name: str | None = None
    args: str = ""


@dataclass(slots=True)
class Delta:
    text: str = ""
    tool_calls: list[ToolCallDelta] = field(default_factory=list)
    usage: dict[str, int] | None = None


@dataclass(slots=True)
class ModelRequest:
    """``messages``: [{"role": system|user|assistant|tool, "content": str, "tool_calls"?:
    [{"id", "name", "args"}], "tool_call_id"?, "name"?}]."""

    messages: list[dict[str, Any]]
    tools: list[ToolSpec] = field(default_factory=list)
    json_schema: dict[str, Any] | None = None
    model: str | None = None  # the caller's model name (an alias the router resolves)
    temperature: float | None = None
    max_tokens: int | None = None
    #: the caller's sampling seed (OpenAI's ``seed``): the same work asks with the same seed,
    #: so a rerun reproduces it, and repetitions, asking with their own, differ
    seed: int | None = None


@dataclass(slots=True)
class ModelResult:
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    object: Any = None  # the parsed answer when a json_schema was asked for
    usage: dict[str, int] | None = None
    provider: str = ""
    model: str = ""
    #: the errors of the attempts before this answer (the retry policy's)
    failures: list[str] = field(default_factory=list)


@dataclass(slots=True)
class PartialResult:
    """The answer so far, as a streaming consumer sees it after each delta: text accumulated,
    tool calls with their argument text parsed as far as it parses."""

    text: str
    tool_calls: list[ToolCall]


class Provider(Protocol):
    name: str
    model: str

    def stream(self, request: ModelRequest) -> AsyncIterator[Delta]: ...


OnDelta = Callable[[PartialResult], Awaitable[None] | None]


def parse_partial_json(text: str) -> dict[str, Any]:
    """Arguments streamed so far, parsed as far as they go (``{"query": "wea`` -> {"query":
    "wea"}, a cut nested string kept too): what a UI shows while a tool call is still
    arriving. pydantic_core's partial parser, strings cut mid-way included. Never raises."""
    if not text.strip():
        return {}
    try:
        value = from_json(text, allow_partial="trailing-strings")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class ModelGate:
    """How many model calls may run at once in one process (a host); the others wait in
    arrival order. So a thousand parallel episodes queue here instead of opening a thousand
    connections to a model server. ``running`` and ``waiting`` are what /v1/runtime shows."""

    def __init__(self, limit: int) -> None:
        self._slots = Slots(limit)  # a cancel while waiting leaves the queue cleanly
        self.limit = limit

    @property
    def running(self) -> int:
        return self._slots.held

    @property
    def waiting(self) -> int:
        return self._slots.waiting

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._slots:
            yield

    def stats(self) -> dict[str, int]:
        return {"limit": self.limit, "running": self.running, "waiting": self.waiting}


class Model:
    """A provider behind the port: accumulates its deltas, parses tool calls, checks schemas.
    Calls pass through the process's ModelGate when it has one."""

    def __init__(self, provider: Provider, gate: ModelGate | None = None,
                 attempts: int = DEFAULT_ATTEMPTS) -> None:
        self.provider = provider
        self.gate = gate
        self.attempts = max(1, attempts)

    async def complete(self, request: ModelRequest, on_delta: OnDelta | None = None
                       ) -> ModelResult:
        """The answer, under the retry policy (RETRY_WAIT): a failed attempt is tried again
        only while nothing of it was streamed to ``on_delta`` (a client never sees an answer
        twice). Each attempt takes its own turn at the gate; none is held while waiting."""
        failures: list[str] = []
        streamed = False

        def relay(partial: PartialResult) -> Awaitable[None] | None:
            nonlocal streamed
            streamed = True
            return on_delta(partial) if on_delta is not None else None

        def again(exc: BaseException) -> bool:
            if isinstance(exc, ModelError) and not streamed:
                failures.append(str(exc)[:500])
                return True
            return False

        retrying = AsyncRetrying(stop=stop_after_attempt(self.attempts), wait=RETRY_WAIT,
                                 retry=retry_if_exception(again), reraise=True)
        try:
            async for attempt in retrying:
                with attempt:
                    result = await self._gated(request, relay if on_delta else None)
        except ModelError as exc:
            exc.failures = failures if failures and failures[-1] == str(exc)[:500] \
                else [*failures, str(exc)[:500]]
            raise
        result.failures = failures
        return result

    async def _gated(self, request: ModelRequest, on_delta: OnDelta | None) -> ModelResult:
        if self.gate is None:
            return await self._complete(request, on_delta)
        async with self.gate.slot():
            return await self._complete(request, on_delta)

    async def _complete(self, request: ModelRequest, on_delta: OnDelta | None
                        ) -> ModelResult:
        text: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        usage = None
        try:
            async for delta in self.provider.stream(request):
                if delta.usage:
                    usage = delta.usage
                if delta.text:
                    text.append(delta.text)
                for piece in delta.tool_calls:
                    call = calls.setdefault(piece.index, {"id": None, "name": "", "args": ""})
                    if piece.id:
                        call["id"] = piece.id
                    if piece.name:
                        call["name"] += piece.name
                    call["args"] += piece.args
                if on_delta is not None and (delta.text or delta.tool_calls):
                    partial = PartialResult("".join(text), self._calls(calls, partial=True))
                    maybe = on_delta(partial)
                    if maybe is not None:
                        await maybe
        except ModelError:
            raise
        except Exception as exc:  # a provider's transport or API error, in one type
            raise ModelError(f"{self.provider.name} failed: {type(exc).__name__}: {exc}") \
                from exc
        result = ModelResult("".join(text), self._calls(calls, partial=False), None, usage,
                             self.provider.name, self.provider.model)
        if request.json_schema is not None:
            result.object = self._checked_object(result.text, request.json_schema)
        return result

    @staticmethod
    def _calls(calls: dict[int, dict[str, Any]], partial: bool) -> list[ToolCall]:
        out = []
        for index in sorted(calls):
            c = calls[index]
            if partial:
                args = parse_partial_json(c["args"])
            else:
                try:
                    args = json.loads(c["args"]) if c["args"].strip() else {}
                except ValueError as exc:
                    raise ModelError(f"tool call {c['name']!r} has arguments that are not "
                                     f"JSON: {c['args'][:200]!r}") from exc
                if not isinstance(args, dict):
                    raise ModelError(f"tool call {c['name']!r} arguments are not an object")
            out.append(ToolCall(c["id"] or f"call_{index}", c["name"], args))
        return out

    @staticmethod
    def _checked_object(text: str, schema: dict[str, Any]) -> Any:
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise ModelError(f"the model's answer is not JSON: {text[:200]!r}") from exc
        fast, worded = _validator(schema)
        if fast.is_valid(value):
            return value
        error = jsonschema.exceptions.best_match(worded.iter_errors(value))
        if error is not None:
            raise ModelError(f"the model's answer does not fit the schema: {error.message}")
        return value  # the two disagree on an edge of the draft: jsonschema's word stands
