"""The one place where failures become error XML, and requests become log lines.

Every answer in 400-599 is the `<error>` document with a fresh errorUUID,
which is also in the request's log line (and with the traceback, for a 500).
Messages name the problem, never a stack trace. A 503 carries Retry-After:
the seconds the error asked for (a full ingress spreads its refusals over a
few), else 1.
"""

from __future__ import annotations

import math
import time
import uuid

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from hub.connector import answers
from hub.errors import RequestError, TransientError, Unavailable
from hub.ingress.context import ERROR_MESSAGE, ERROR_UUID, PROVIDER, RECORD
from hub.ops import metrics
from hub.store.pool import DatabaseError

log = structlog.get_logger("hub.ingress")

XML = "application/xml"

_HTTP_REASONS = {
    400: "VALIDATION",
    401: "AUTHENTICATION",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "VALIDATION",
    413: "TOO_LARGE",
    415: "UNSUPPORTED_MEDIA",
}


@web.middleware
async def answer_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    try:
        response = await handler(request)
    except RequestError as exc:
        response = _error(request, exc.status, exc.reason, exc.message)
    except Unavailable as exc:
        response = _error(request, 503, "UNAVAILABLE", f"the record was not stored: {exc}")
        response.headers["Retry-After"] = str(math.ceil(exc.retry_after or 1))
    except DatabaseError as exc:
        response = _error(request, 500, "DATABASE", f"the store is unavailable: {exc}")
    except TransientError as exc:
        response = _error(request, 503, "UNAVAILABLE", str(exc))
    except web.HTTPException as exc:
        response = _http_error(request, exc)
    except Exception:
        response = _error(request, 500, "UNKNOWN", "an unexpected error; quote the errorUUID")
        log.exception("unexpected error", error_uuid=request.get(ERROR_UUID))
    _log(request, response.status, started)
    resource = request.match_info.route.resource  # None for an unknown path
    metrics.http_request(resource.canonical if resource else "unmatched", response.status)
    return response


def _http_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    status = exc.status
    if status == 404:
        message = f"no such endpoint: {request.path}"
    elif status == 405:
        allowed = ", ".join(sorted(getattr(exc, "allowed_methods", ()) or ()))
        message = f"{request.method} is not allowed on {request.path} (allowed: {allowed})"
    elif status == 413:
        message = "the body is larger than the hub accepts"
    else:
        message = exc.reason
    response = _error(request, status, _HTTP_REASONS.get(status, "UNKNOWN"), message)
    if status == 405 and "Allow" in exc.headers:
        response.headers["Allow"] = exc.headers["Allow"]
    return response


def _error(request: web.Request, status: int, reason: str, message: str) -> web.Response:
    error_uuid = uuid.uuid4()
    request[ERROR_UUID] = str(error_uuid)
    request[ERROR_MESSAGE] = message
    return web.Response(
        status=status, body=answers.error(reason, error_uuid, message), content_type=XML
    )


def _log(request: web.Request, status: int, started: float) -> None:
    fields: dict[str, object] = {
        "method": request.method,
        "path": request.path,
        "status": status,
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
    }
    if PROVIDER in request:
        fields["provider"] = request[PROVIDER]
    if RECORD in request:
        fields["record"] = request[RECORD]
    if ERROR_UUID in request:
        fields |= {"error_uuid": request[ERROR_UUID], "error": request[ERROR_MESSAGE]}
    if status >= 500:
        log.error("request", **fields)
    elif status >= 400:
        log.warning("request", **fields)
    else:
        log.info("request", **fields)
