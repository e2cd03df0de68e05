"""The edge kit's command half (over api/commands.py, which services use): send a command to
an entity and turn the runtime's refusal codes into a family's own error format, by a table.
Actors answer with codes ("not_found", "invalid", "no_input"...); only the edge knows statuses
and wire text, and each family's table says how its document spells them.

The WebSocket half is api/ws.py; strict JSON and the bounds are api/edge.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, NoReturn

from fastapi import HTTPException

from api import commands
from api.commands import UNKNOWN_OUTCOME, Refused
from runtime.client import ActorError, ActorRef, OutcomeUnknown, Unavailable
from runtime.entity import Outcome

__all__ = ["Refusals", "query", "send"]

#: what every family means by the runtime's own codes, unless its table says otherwise
RUNTIME_STATUSES: dict[str, int] = {
    "conflict": 409, "unavailable": 503, "unknown_kind": 404, "unknown_command": 400,
    "cancelled": 409, "deadline": 504, "unreadable": 500, "bad_request": 400,
}


def _http(status: int, message: str, code: str) -> Exception:
    return HTTPException(status, message)


@dataclass(frozen=True)
class Refusals:
    """A family's table: refusal code -> HTTP status, and how its document writes an error
    (``render(status, message, code)`` returns the exception to raise; FastAPI's
    {"detail": message} by default). Codes not in the table get ``default``."""

    statuses: Mapping[str, int] = field(default_factory=dict)
    default: int = 400
    render: Callable[[int, str, str], Exception] = _http
    unknown_outcome: str = UNKNOWN_OUTCOME

    def status(self, code: str) -> int:
        return self.statuses.get(code) or RUNTIME_STATUSES.get(code) or self.default

    def error(self, exc: Exception) -> Exception:
        """The family's error for a service's refusal or a runtime failure; anything else is
        returned as it is."""
        if isinstance(exc, Refused):
            if exc.code == "outcome_unknown":
                return self.render(503, self.unknown_outcome, exc.code)
            return self.render(self.status(exc.code), exc.message, exc.code)
        if isinstance(exc, ActorError):
            return self.render(self.status(exc.code), exc.message, exc.code)
        if isinstance(exc, OutcomeUnknown):
            return self.render(503, self.unknown_outcome, "outcome_unknown")
        if isinstance(exc, Unavailable):
            return self.render(503, str(exc), "unavailable")
        return exc

    def raise_for(self, exc: Exception) -> NoReturn:
        raise self.error(exc) from None


async def query(ref: ActorRef, name: str, refusals: Refusals, args: Any = None) -> Any:
    """``ref.aquery(name, args)``, its refusals raised in the family's format."""
    try:
        return await commands.query(ref, name, args)
    except Refused as exc:
        refusals.raise_for(exc)


async def send(ref: ActorRef, command: dict[str, Any], refusals: Refusals, *,
               idempotency_key: str | None = None, with_state: bool = False) -> Outcome:
    """``ref.aask(command)``, its refusals raised in the family's format."""
    try:
        return await commands.ask(ref, command, idempotency_key=idempotency_key,
                                  with_state=with_state)
    except Refused as exc:
        refusals.raise_for(exc)
