"""A family service's way to its entities, with no HTTP in it: a command, a query or a long
command sent, and what the runtime refused turned into one domain error, ``Refused(code,
message)``. The code is the entity's own ("not_found", "invalid", "conflict"...) or the
runtime's ("unavailable", "outcome_unknown"); which HTTP status or WebSocket frame it becomes
is the edge's business (api/kit.py's tables).

Why: a Python program, the command line and the HTTP routes all call a family's service; only
the last of them speaks HTTP.
"""

from __future__ import annotations

from typing import Any

from runtime.client import ActorError, ActorRef, OutcomeUnknown, Unavailable
from runtime.entity import Outcome

__all__ = ["Refused", "UNKNOWN_OUTCOME", "ask", "launch", "query", "refused"]

UNKNOWN_OUTCOME = ("the server handling this entity stopped; whether the change was stored is "
                   "unknown: read it to find out")


class Refused(Exception):
    """An operation a family's service would not or could not do: ``code`` says why in the
    entity's or the runtime's words, ``message`` in the family's."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def refused(exc: Exception) -> Exception:
    """The runtime's refusal as a Refused; anything else as it is."""
    if isinstance(exc, ActorError):
        return Refused(exc.code, exc.message)
    if isinstance(exc, OutcomeUnknown):
        return Refused("outcome_unknown", UNKNOWN_OUTCOME)
    if isinstance(exc, Unavailable):
        return Refused("unavailable", str(exc))
    return exc


async def ask(ref: ActorRef, command: dict[str, Any], *, idempotency_key: str | None = None,
              with_state: bool = False) -> Outcome:
    """``ref.aask(command)``; a refusal raised as Refused."""
    try:
        return await ref.aask(command, idempotency_key, with_state)
    except (ActorError, OutcomeUnknown, Unavailable) as exc:
        raise refused(exc) from None


async def query(ref: ActorRef, name: str, args: Any = None) -> Any:
    """``ref.aquery(name, args)``; a refusal raised as Refused."""
    try:
        return await ref.aquery(name, args)
    except (ActorError, OutcomeUnknown, Unavailable) as exc:
        raise refused(exc) from None


async def launch(ref: ActorRef, command: dict[str, Any]) -> str:
    """Send a long command and return once it has said it is under way (its first progress:
    what it was given is in the log) or has ended: "progress" or "outcome". It runs on in its
    host whatever the caller does next. A refusal is raised as Refused."""
    stream = ref.aask_stream(command)
    try:
        what, _ = await anext(stream)
        return what
    except (ActorError, OutcomeUnknown, Unavailable) as exc:
        raise refused(exc) from None
    finally:
        await stream.aclose()
