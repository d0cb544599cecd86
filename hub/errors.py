"""Every error the hub raises on purpose, as one tree.

    HubError
    ├── ConfigError            bad settings or tenancy file: refuse to start
    ├── RequestError           a caller's mistake, answered with error XML
    │   ├── InvalidDocument    400 VALIDATION: every bad field, one sentence each
    │   ├── NotAuthenticated   401 AUTHENTICATION
    │   ├── Forbidden          403 FORBIDDEN
    │   ├── NotFound           404 NOT_FOUND
    │   ├── TooLarge           413 TOO_LARGE
    │   └── UnsupportedMedia   415 UNSUPPORTED_MEDIA
    ├── TransientError         may work if tried again (broker or database away)
    │   ├── Unavailable        503 UNAVAILABLE: the record was not stored durably
    │   ├── Away               a server the hub needs is away: wait for it, spend no attempt
    │   │   └── BrokerRefused  the broker does not take the router's jobs (a full queue)
    │   └── DatabaseError      500 DATABASE on a read (hub/store/pool.py)
    │       └── DatabaseAway   (also an Away) unreachable, shutting down, read-only,
    │                          too many connections, no pooled connection in time
    └── PermanentError         will never work: dead-letter, do not retry
        └── PoisonMessage      a queue message that cannot be understood

The ingress maps these (and aiohttp's own 404, 405 and 413) to error XML in
one place (`hub/ingress/middleware.py`); consumers map `TransientError` and
`PermanentError` to ack / retry / dead-letter in one place
(`hub/broker/consumer.py`).
"""

from __future__ import annotations


class HubError(Exception):
    """Base of every error the hub raises on purpose."""


class ConfigError(HubError):
    """The settings or the tenancy file are not usable; the hub must not start."""


class RequestError(HubError):
    """A caller's request that the hub refuses; carries the HTTP status and reason."""

    status = 400
    reason = "VALIDATION"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidDocument(RequestError):
    """The body is not a valid document; `problems` names every bad field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class NotAuthenticated(RequestError):
    status = 401
    reason = "AUTHENTICATION"


class Forbidden(RequestError):
    status = 403
    reason = "FORBIDDEN"


class NotFound(RequestError):
    status = 404
    reason = "NOT_FOUND"


class TooLarge(RequestError):
    status = 413
    reason = "TOO_LARGE"


class UnsupportedMedia(RequestError):
    status = 415
    reason = "UNSUPPORTED_MEDIA"


class TransientError(HubError):
    """Something outside the hub failed in a way that may pass: retry.

    `retry_after` is how long the other side asked us to wait, if it said.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Away(TransientError):
    """A server the hub needs (the database) is away, not the message's fault.

    A consumer that meets it holds the message (unacked, no attempt spent) and
    takes no more until the server answers again (`hub/broker/consumer.py`).
    """


class BrokerRefused(Away):
    """The broker did not take a publish the handler needs (a queue at its maximum length,
    no node answering): the message is held and tried again, never dead-lettered."""


class Unavailable(TransientError):
    """The broker (or database) could not take the record durably in time."""


class PermanentError(HubError):
    """Retrying cannot help: dead-letter with this message as the reason."""


class PoisonMessage(PermanentError):
    """A queue message whose body or headers cannot be understood."""
