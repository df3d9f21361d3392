"""The errors of bgjobd (its ``NNN: text`` answers) and on the way to it."""

from __future__ import annotations

import re
from typing import Optional

__all__ = [
    "BgjobError",
    "UnknownModule",
    "Forbidden",
    "NotFound",
    "Cancelled",
    "TooLarge",
    "ModuleFailed",
    "Busy",
    "Timeout",
    "ConnectionFailed",
    "error_from_answer",
]


class BgjobError(Exception):
    """An error from bgjobd or on the way to it.

    ``code`` is the answer's code (400, 500, 503, ...), or 0 when the error
    happened on the client's side (no connection, no answer in time);
    ``text`` is the text after the code; ``str(error)`` is the whole line.
    """

    def __init__(self, code: int, text: str):
        self.code = code
        self.text = text
        super().__init__(f"{code:03d}: {text}" if code > 0 else text)


class UnknownModule(BgjobError):
    """``400``: no such module (or an empty request)."""


class Forbidden(BgjobError):
    """``403``: this client or listener may not make that request."""


class NotFound(BgjobError):
    """``404``: no such job here (never added, fetched, expired, cancelled,
    or added on another listener), or a module's own ``404:`` answer."""


class Cancelled(BgjobError):
    """``410``: the job was cancelled while its fetch waited for it."""


class TooLarge(BgjobError):
    """``413``: the request is over the daemon's ``max_request_bytes``."""


class ModuleFailed(BgjobError):
    """``500``: the module failed (non-zero exit, killed, too much output,
    cannot start) or answered a ``500:`` itself; also the daemon's own
    ``500:`` errors, such as ``Unknown queue request``."""


class Busy(BgjobError):
    """``503``: the waiting line or a connection limit is full, the journal
    cannot be written (``Journal write failed``), or the
    daemon is shutting down; try again later."""


class Timeout(BgjobError):
    """``504`` (the module ran past its time limit), ``408`` (the request
    did not arrive in time), or code 0: no answer within the client's
    timeout."""


class ConnectionFailed(BgjobError):
    """Code 0: the daemon could not be reached, or the connection broke."""


_BY_CODE = {
    400: UnknownModule,
    403: Forbidden,
    404: NotFound,
    408: Timeout,
    410: Cancelled,
    413: TooLarge,
    500: ModuleFailed,
    503: Busy,
    504: Timeout,
}

# A 4xx or 5xx code and a colon after leading white space: the test the
# seed's clients made (PHP's ltrim() strips NUL too).
_ERROR = re.compile(rb"^([45][0-9]{2}):\s?(.*)$", re.S)


def error_from_answer(answer: bytes) -> Optional[BgjobError]:
    """The error an answer stands for, or None when it is not an error."""
    m = _ERROR.match(answer.lstrip(b" \t\n\r\x0b\x00"))
    if m is None:
        return None
    code = int(m.group(1))
    text = m.group(2).rstrip(b" \t\n\r\x0b\x00").decode("utf-8", "replace")
    return _BY_CODE.get(code, BgjobError)(code, text)
