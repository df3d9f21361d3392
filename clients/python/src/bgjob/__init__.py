"""A client of bgjobd: direct calls, UDP, and the job queue, with typed errors.

    from bgjob import Client
    print(Client("127.0.0.1:12341").run("upper", b"hello"))
"""

from .client import Client, JobState
from .errors import (
    BgjobError,
    Busy,
    Cancelled,
    ConnectionFailed,
    Forbidden,
    ModuleFailed,
    NotFound,
    Timeout,
    TooLarge,
    UnknownModule,
    error_from_answer,
)

__all__ = [
    "Client",
    "JobState",
    "BgjobError",
    "Busy",
    "Cancelled",
    "ConnectionFailed",
    "Forbidden",
    "ModuleFailed",
    "NotFound",
    "Timeout",
    "TooLarge",
    "UnknownModule",
    "error_from_answer",
]
