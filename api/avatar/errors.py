"""Errors exactly as the avatar document writes them: {"error", "message", "code"} with its
statuses, on every route of the family, whatever went wrong (bad JSON, a wrong content type, a
body too large, an unexpected error): never FastAPI's {"detail"}.

AvatarRoute checks the caller's credential before anything else of the route runs (a caller
without a key learns nothing about bodies), refuses non-JSON content types, and turns FastAPI's
validation errors into the document's messages ("Missing required field:
personaConfig.avatarId"); the generic snake_case contract gets the messages Agora's mock
gives ("Missing required field(s): avatar_id, quality").
"""

from __future__ import annotations

from typing import Any, Callable, Coroutine, Literal

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.avatar import keys
from api.edge import EdgeRoute
from schemas.avatar import AvatarError

__all__ = ["AvatarRoute", "Refused", "error_body", "refused", "responses"]

Auth = Literal["api_key", "session_token", "none"]
_TITLES = {400: "Invalid request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
           405: "Method not allowed", 409: "Conflict", 413: "Payload too large",
           415: "Unsupported media type", 431: "Request header fields too large",
           500: "Internal server error", 503: "Service unavailable", 504: "Gateway timeout"}
_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "PAYLOAD_TOO_LARGE",
          415: "UNSUPPORTED_MEDIA_TYPE", 431: "HEADERS_TOO_LARGE", 500: "INTERNAL_ERROR",
          503: "SERVICE_UNAVAILABLE", 504: "TIMEOUT"}


class Refused(Exception):
    """An answer in the document's error format, raised anywhere in a route."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code

    def response(self) -> JSONResponse:
        body = AvatarError(error=_TITLES.get(self.status, "Error"), message=self.message,
                           code=self.code)
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return JSONResponse(body.model_dump(), self.status, headers=headers)


def refused(status: int, message: str, code: str) -> Refused:
    return Refused(status, message, code)


#: a session that is not the caller's is not found, whether it exists or not
NOT_FOUND = ("Session not found or already terminated", "SESSION_NOT_FOUND")


class ServiceRefusals:
    """The service's refusal codes (api/avatar/service.py) as the document's errors: a table
    for ``AvatarRoute.refusing``."""

    def error(self, exc: Any) -> Refused:
        if exc.code == "not_found":
            return Refused(404, *NOT_FOUND)
        if exc.code == "invalid_token":
            return Refused(401, exc.message, "INVALID_SESSION_TOKEN")
        if exc.code in ("unavailable", "outcome_unknown"):
            return Refused(503, exc.message, "SERVICE_UNAVAILABLE")
        return Refused(400, exc.message, "VALIDATION_ERROR")


def error_body(status: int, message: str, request_id: str) -> dict[str, Any]:
    """The edge middleware's answers (413, 431, 500) on this family's paths."""
    code = _CODES.get(status, "VALIDATION_ERROR" if status == 400 else "ERROR")
    if status == 500:
        message = f"Unexpected error; request id {request_id}"
    return {"error": _TITLES.get(status, "Error"), "message": message, "code": code}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    every = sorted({400, 413, 415, 500, 503, *statuses})
    return {s: {"model": AvatarError, "description": _TITLES[s]} for s in every}


# ---------------------------------------------------------------------- credentials


def bearer(request: Request) -> str | None:
    """The Authorization header's bearer credential ("" when the header is there but empty or
    not a bearer), None without the header."""
    raw = request.headers.get("authorization")
    if raw is None:
        return None
    scheme, _, value = raw.strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def check_api_key(request: Request) -> str:
    """The caller's owner id from ``Authorization: Bearer <key>`` (the document) or
    ``x-api-key`` (the generic contract)."""
    presented = bearer(request)
    if not presented:
        presented = request.headers.get("x-api-key", "").strip() or presented
    if presented is None:
        raise refused(403, "Authorization header missing", "MISSING_API_KEY")
    owner = keys.api_key_owner(presented) if presented else None
    if owner is None:
        raise refused(401, "Invalid API key", "INVALID_API_KEY")
    return owner


def check_session_token(request: Request) -> keys.Claims:
    presented = bearer(request)
    if presented is None:
        raise refused(403, "Authorization header missing", "MISSING_SESSION_TOKEN")
    claims = keys.read_token(presented) if presented else None
    if claims is None:
        raise refused(401, "Invalid session token", "INVALID_SESSION_TOKEN")
    return claims


# ---------------------------------------------------------------------- validation messages


#: the stop body's fields as the generic contract spells them
_SNAKE = {"sessionId": "session_id", "sessionToken": "session_token"}
_CHOICES = {"quality": "low, medium, high", "videoEncoding": "H264, VP8, AV1",
            "video_encoding": "H264, VP8, AV1",
            "area": "GLOBAL, NORTH_AMERICA, EUROPE, ASIA, INDIA, JAPAN"}


def _path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts)


def _message(error: dict[str, Any], snake: bool) -> str:
    path, kind = _path(tuple(error["loc"])), error["type"]
    field = path.rsplit(".", 1)[-1]
    if not path:
        return "The request body must be a JSON object"
    if kind == "missing":
        return f"Missing required field: {path}"
    if field in _CHOICES and kind in ("literal_error", "enum", "string_type"):
        return f"Invalid {field} value. Must be one of: {_CHOICES[field]}"
    if field in ("activityIdleTimeout", "activity_idle_timeout"):
        return (f"{field} must be a non-negative number" if snake else
                f"{path} must be a number of seconds >= 0 (as a string or a number)")
    if kind == "bool_type":
        return f"{path if not snake else field} must be a boolean"
    if kind in ("string_type", "string_too_short", "string_too_long"):
        return f"{path} must be {'a non-empty string' if kind != 'string_too_long' else 'shorter'}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"{path} must be an object"
    return f"Invalid value for {path}: {error.get('msg', 'invalid')}"


def validation_message(errors: list[dict[str, Any]], snake: bool) -> str:
    """The message for a body's first problem, missing fields first (the document's example);
    the snake_case contract lists every missing field as its mock does."""
    if snake:
        errors = [{**e, "loc": tuple(_SNAKE.get(str(p), p) for p in e["loc"])} for e in errors]
    missing = [e for e in errors if e["type"] == "missing"]
    if snake and missing:
        paths = [_path(tuple(e["loc"])) for e in missing]
        top = [p for p in paths if "." not in p]
        if len(top) == 1 and top[0] in ("session_id", "session_token"):
            return f"Missing required field: {top[0]}"
        if top:
            return f"Missing required field(s): {', '.join(top)}"
        nested = [p.rsplit(".", 1)[-1] for p in paths]
        return f"Missing required agora_settings field(s): {', '.join(nested)}"
    first = (missing or errors)[0]
    return _message(first, snake)


def _is_json_error(errors: list[dict[str, Any]]) -> bool:
    return any(e["type"] in ("json_invalid", "json_type") for e in errors)


class AvatarRoute(EdgeRoute):
    """The family's route class. ``auth`` (set per route through ``openapi_extra``'s
    "x-avatar-auth") says which credential the route takes; ``snake`` marks the generic
    contract's routes, whose messages are snake_case."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        extra = self.openapi_extra or {}
        auth: Auth = extra.get("x-avatar-auth", "none")
        snake_route: bool = bool(extra.get("x-avatar-snake", False))
        takes_body = self.body_field is not None

        async def checked(request: Request) -> Response:
            try:
                if auth == "api_key":
                    request.state.avatar_owner = check_api_key(request)
                elif auth == "session_token":
                    request.state.avatar_claims = check_session_token(request)
                if takes_body:
                    kind = request.headers.get("content-type", "application/json")
                    media = kind.split(";", 1)[0].strip().lower()
                    if media and media != "application/json" and not media.endswith("+json"):
                        raise refused(415, "Content-Type must be application/json",
                                      "UNSUPPORTED_MEDIA_TYPE")
                try:
                    return await handler(request)
                except RequestValidationError as exc:
                    errors = list(exc.errors())
                    if _is_json_error(errors):
                        raise refused(400, "Invalid JSON in request body",
                                      "INVALID_JSON") from None
                    snake = snake_route or "x-api-key" in request.headers
                    raise refused(400, validation_message(errors, snake),
                                  "VALIDATION_ERROR") from None
            except Refused as exc:
                return exc.response()

        return checked
