"""What the HTTP adapters share: one request with a total timeout, its outcome classified.

`request()` sends one request and returns (status, body) for a 2xx answer;
anything else becomes the error the partner contract gives it:

    408, 425, 429, 5xx, refused, reset, timeout   TransientPartnerError (+ Retry-After)
    any other status (3xx, other 4xx)             PermanentPartnerError, the answer kept

Given the adapter's `Budget`, it first waits the partner's turn (its rate
limit), outside the request's timeout: a wait for the rate is not the
partner being slow. It must never retry or log on its own (retries are the
delivery worker's), never sleep but for that turn, and never follow a
redirect: a partner that moved is a configuration to fix, not something to
chase with a bearer token.
"""

from __future__ import annotations

import datetime
import email.utils
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self

import aiohttp
import orjson
import yarl
from lxml import etree

from adapters.base import (
    AdapterConfigError,
    Budget,
    PartnerError,
    PermanentPartnerError,
    TransientPartnerError,
)
from hub.connector import xmlsafe
from hub.errors import InvalidDocument

DEFAULT_TIMEOUT = 10.0
TRANSIENT_STATUSES = frozenset({408, 425, 429})
# An answer larger than this is not one the hub can have asked for.
MAX_ANSWER_BYTES = 8 * 1024 * 1024

# Turns an error answer's body into a sentence for the error message, or None.
Explain = Callable[[bytes], str | None]


def timeout_of(config_name: str, settings: Mapping[str, Any]) -> float:
    """`settings.timeout` in seconds (DEFAULT_TIMEOUT if absent), or AdapterConfigError."""
    value = settings.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AdapterConfigError(f"provider {config_name!r}: settings.timeout must be a number")
    if not math.isfinite(value) or value <= 0:
        raise AdapterConfigError(f"provider {config_name!r}: settings.timeout must be above 0")
    return float(value)


def base_url(config_name: str, url: str) -> str:
    """The partner's base URL without a trailing '/', or AdapterConfigError if not http(s)."""
    try:
        parsed = yarl.URL(url)
    except (TypeError, ValueError) as exc:
        raise AdapterConfigError(f"provider {config_name!r}: url {url!r} is not a URL") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise AdapterConfigError(
            f"provider {config_name!r}: url must be http(s)://host/..., not {url!r}"
        )
    if parsed.query_string or parsed.fragment:
        raise AdapterConfigError(f"provider {config_name!r}: url must have no query or fragment")
    return str(parsed).rstrip("/")


def parse_retry_after(value: str | None, now: datetime.datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or HTTP-date), or None.

    A date in the past means "now" (0); anything unreadable is ignored.
    """
    if value is None or not (value := value.strip()):
        return None
    try:
        seconds = float(value)
    except ValueError:
        return _seconds_until(value, now)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def _seconds_until(value: str, now: datetime.datetime | None) -> float | None:
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # "-0000" or no zone: HTTP-dates are GMT
        moment = moment.replace(tzinfo=datetime.UTC)
    now = now or datetime.datetime.now(datetime.UTC)
    return max(0.0, (moment - now).total_seconds())


def is_transient(status: int) -> bool:
    return status in TRANSIENT_STATUSES or 500 <= status <= 599


def error_for(
    status: int,
    what: str,
    body: bytes,
    retry_after: str | None = None,
    explain: Explain | None = None,
) -> PartnerError:
    """The error for a non-2xx answer to `what` (e.g. "crm: PUT /clubs/1/users/...")."""
    answer = body.decode("utf-8", "replace")
    detail = explain(body) if explain is not None else None
    message = f"{what} answered {status}" + (f": {detail}" if detail else "")
    if is_transient(status):
        return TransientPartnerError(
            message, status=status, answer=answer, retry_after=parse_retry_after(retry_after)
        )
    return PermanentPartnerError(message, status=status, answer=answer)


async def request(
    session: aiohttp.ClientSession,
    method: str,
    url: yarl.URL,
    *,
    what: str,
    headers: Mapping[str, str],
    body: bytes | None = None,
    total: float = DEFAULT_TIMEOUT,
    explain: Explain | None = None,
    budget: Budget | None = None,
) -> tuple[int, bytes]:
    """Send one request; (status, body) for a 2xx answer, else the classified PartnerError.

    `total` (seconds) bounds everything, from connecting to reading the last byte; the
    wait for the `budget`'s turn comes before, and is not in it.
    """
    if budget is not None:
        await budget.wait_turn()
    try:
        async with session.request(
            method,
            url,
            headers=dict(headers),
            data=body,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=total),
        ) as response:
            answer = await _read(response)
            status = response.status
            retry_after = response.headers.get("Retry-After")
    except TimeoutError as exc:  # also aiohttp's own timeouts, which subclass it
        raise TransientPartnerError(f"{what}: no answer within {total:g} s") from exc
    except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
        raise TransientPartnerError(f"{what}: {_describe(exc)}") from exc
    except aiohttp.ClientError as exc:
        raise PermanentPartnerError(f"{what}: {_describe(exc)}") from exc
    if 200 <= status <= 299:
        if len(answer) > MAX_ANSWER_BYTES:
            raise PermanentPartnerError(
                f"{what}: the answer is over {MAX_ANSWER_BYTES} bytes", status=status
            )
        return status, answer
    raise error_for(status, what, answer, retry_after, explain)


async def _read(response: aiohttp.ClientResponse) -> bytes:
    """The whole body, up to one byte past MAX_ANSWER_BYTES; raises if it was cut short."""
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_ANSWER_BYTES and (chunk := await response.content.read(64 * 1024)):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(slots=True)
class Answer:
    """A 2xx answer, read strictly: anything unexpected is a PermanentPartnerError."""

    what: str
    status: int
    raw: bytes

    def nonsense(self, problem: str) -> PermanentPartnerError:
        return PermanentPartnerError(
            f"{self.what}: {problem}",
            status=self.status,
            answer=self.raw.decode("utf-8", "replace"),
        )


@dataclass(slots=True)
class JsonAnswer(Answer):
    """A 2xx JSON answer (`parse`), read strictly like `Answer`."""

    data: Any = None

    @classmethod
    def parse(cls, what: str, status: int, raw: bytes) -> Self:
        answer = cls(what, status, raw)
        try:
            answer.data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise answer.nonsense("the answer is not JSON") from exc
        return answer

    def object(self) -> dict[str, Any]:
        if not isinstance(self.data, dict):
            raise self.nonsense("the answer is not a JSON object")
        return self.data

    def objects(self) -> list[dict[str, Any]]:
        if not isinstance(self.data, list) or not all(isinstance(i, dict) for i in self.data):
            raise self.nonsense("the answer is not a list of objects")
        return self.data

    def id_of(self, item: dict[str, Any], key: str) -> str:
        """An ID, sent as a number or as text; the hub keeps every ID as text."""
        value = item.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str) and value.strip():
            return value
        raise self.nonsense(f"{key} is missing or empty")

    def text(self, item: dict[str, Any], key: str) -> str:
        """A text field; "" when absent."""
        value = item.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self.nonsense(f"{key} is not a string")
        return value


@dataclass(slots=True)
class XmlAnswer(Answer):
    """A 2xx XML answer (`parse`: hardened, as the ingress parses), read strictly."""

    root: etree._Element | None = None

    @classmethod
    def parse(cls, what: str, status: int, raw: bytes) -> Self:
        answer = cls(what, status, raw)
        try:
            answer.root = xmlsafe.parse(raw)
        except InvalidDocument as exc:
            raise answer.nonsense(f"the answer is not usable XML: {exc.message}") from exc
        return answer
