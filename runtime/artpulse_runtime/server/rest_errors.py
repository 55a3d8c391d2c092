"""Every REST error the app answers is ``{"error": "<one line>"}``, as the V2 protocol says.

MLServer answers its own errors that way, but FastAPI answers a body it cannot read (malformed
JSON, NaN, a document that is not a V2 request) with 422 ``{"detail": [...]}``, and Starlette
answers plain text. ``install_error_handlers`` replaces those answers: a body that is not a V2
request is 400 (counted as ``malformed``), a model that is not ready or no longer loaded is
503, anything unexpected is 500 (its traceback stays in the server log).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from mlserver.errors import MLServerError, ModelNotFound, ModelNotReady
from starlette.exceptions import HTTPException

from artpulse_runtime.refusals import REASON_MALFORMED, record_refusal

SHOWN_PROBLEMS = 3
"""A message names at most this many problems of a body (and counts the rest)."""

_NON_FINITE = (b"NaN", b"Infinity", b"-Infinity")
_REPOSITORY_PREFIX = "/v2/repository/"


def error_headers(status: int) -> dict[str, str]:
    """The hint headers of an error answer: how to authenticate (401), when to retry (503)."""
    if status == 401:
        return {"WWW-Authenticate": "Bearer"}
    if status == 503:
        return {"Retry-After": "1"}
    return {}


async def send_error(
    send: Callable[[MutableMapping[str, Any]], Awaitable[None]], status: int, message: str
) -> None:
    """Answer ``error_response(status, message)`` on a raw ASGI ``send`` (the guard and the
    direct inference path answer outside FastAPI's exception handlers)."""
    response = error_response(status, message)
    await send({"type": "http.response.start", "status": status, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


def error_response(
    status: int, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """``{"error": message}`` with ``status`` and its hint headers."""
    return JSONResponse(
        {"error": message}, status_code=status, headers={**error_headers(status), **(headers or {})}
    )


def _where(location: Sequence[Any]) -> str:
    """``("body", "inputs", 0, "data")`` -> ``inputs[0].data``; the body itself -> ``body``."""
    text = ""
    for part in location[1:] if location and location[0] == "body" else location:
        text += f"[{part}]" if isinstance(part, int) else f"{'.' if text else ''}{part}"
    return text or "body"


def describe_invalid_body(errors: Sequence[Mapping[str, Any]], body: object) -> str:
    """One line saying why a body is not a V2 request: bad JSON (where, and a hint for NaN
    or Infinity in the JSON text ``body``), or the fields that do not fit, never the values
    themselves."""
    for error in errors:
        if error.get("type") == "json_invalid":
            location = error.get("loc", ())
            position = location[-1] if location and isinstance(location[-1], int) else None
            cause = (error.get("ctx") or {}).get("error") or error.get("msg", "invalid")
            where = f" at byte {position}" if position is not None else ""
            message = f"request body is not valid JSON: {cause}{where}"
            text = body.encode() if isinstance(body, str) else body
            if (
                position is not None
                and isinstance(text, bytes)
                and text[position:].startswith(_NON_FINITE)
            ):
                message += "; JSON has no NaN or Infinity, and every value must be finite"
            return message
    if any(tuple(error.get("loc", ())) == ("body",) for error in errors):
        return (
            "request body is not a V2 inference request: expected a JSON object such as "
            '{"inputs": [{"name": ..., "datatype": ..., "shape": [...], "data": [...]}]}'
        )
    problems = [f"{_where(error.get('loc', ()))}: {error.get('msg')}" for error in errors]
    more = len(problems) - SHOWN_PROBLEMS
    shown = "; ".join(problems[:SHOWN_PROBLEMS]) + (f" (and {more} more)" if more > 0 else "")
    return f"request body is not a V2 inference request: {shown}"


def mlserver_error_status(path: str, error: MLServerError) -> int:
    """The status answering ``error`` on ``path``: its own, but 503 for a model the guard let
    through that is not ready or no longer loaded (outside the repository API)."""
    gone = isinstance(error, ModelNotFound) and not path.startswith(_REPOSITORY_PREFIX)
    return 503 if isinstance(error, ModelNotReady) or gone else error.status_code


def internal_error_message(error: BaseException) -> str:
    """What a client is told of an unexpected error (the traceback stays in the log)."""
    return f"internal server error ({type(error).__name__}); the server log has the details"


async def _invalid_body(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    message = describe_invalid_body(error.errors(), error.body)
    record_refusal(REASON_MALFORMED, message)
    return error_response(400, message)


async def _http_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    return error_response(error.status_code, str(error.detail), error.headers)


async def _mlserver_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, MLServerError)
    return error_response(mlserver_error_status(request.url.path, error), str(error))


async def _internal_error(_request: Request, error: Exception) -> JSONResponse:
    return error_response(500, internal_error_message(error))


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` as ``{"error": "..."}`` (see the module docstring)."""
    app.add_exception_handler(RequestValidationError, _invalid_body)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(MLServerError, _mlserver_error)
    app.add_exception_handler(Exception, _internal_error)
