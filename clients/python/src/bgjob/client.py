"""The client: one TCP connection (or one UDP datagram) per call."""

from __future__ import annotations

import enum
import re
import socket
import time
from typing import Any, Dict, Mapping, Optional, Tuple, Union
from urllib.parse import urlencode

from .errors import BgjobError, ConnectionFailed, Timeout, error_from_answer

__all__ = ["Client", "JobState"]

Data = Union[bytes, bytearray, memoryview, str]

# A module name as the daemon keeps it; anything else would be changed or split.
_MODULE_NAME = re.compile(r"[A-Za-z0-9_-]+")
_SERVER = re.compile(r"(?:\[([^\]]+)\]|([^:\[\]]+)):([0-9]{1,5})")
# The largest payload of a UDP datagram (over IPv6, and IPv4 less its headers).
_MAX_DATAGRAM = 65507


class JobState(enum.IntEnum):
    """What ``queue:check`` answers for a job."""

    WAITING = 0
    """In the waiting line: not started yet."""
    RUNNING = 1
    """Its module runs."""
    DONE = 2
    """Finished: its result waits to be fetched with get()."""


class Client:
    """A client of bgjobd.

    Each call writes its request, shuts down the write side (so the daemon
    ends the request at once, without waiting for a quiet gap) and reads
    the answer until the daemon closes. An ``NNN: text`` answer is raised
    as a :class:`BgjobError` subclass.

    ``server`` is ``HOST:PORT``, as bgjob's ``--server`` (``[::1]:12341``
    for IPv6); ``connect_timeout`` bounds the connection, ``timeout`` each
    answer (give it more than the daemon's job time limit for direct calls).
    """

    def __init__(
        self,
        server: str = "127.0.0.1:12341",
        connect_timeout: float = 5.0,
        timeout: float = 60.0,
    ):
        m = _SERVER.fullmatch(server)
        if m is None:
            raise ValueError(f'server must be HOST:PORT, not "{server}"')
        self.server = server
        self.address: Tuple[str, int] = (m.group(1) or m.group(2), int(m.group(3)))
        self.connect_timeout = connect_timeout
        self.timeout = timeout

    def run(self, module: str, data: Data = b"") -> bytes:
        """Runs a module and returns its answer, byte for byte."""
        return self._ask(_call(module, data), self.timeout)

    def send(self, module: str, data: Data = b"") -> None:
        """Runs a module over UDP, fire and forget: nothing is answered, and
        a datagram the daemon refuses or that is lost is not reported."""
        datagram = _call(module, data)
        if len(datagram) > _MAX_DATAGRAM:
            raise ValueError(f"a datagram holds at most {_MAX_DATAGRAM} bytes")
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                *self.address, type=socket.SOCK_DGRAM
            )[0]
            with socket.socket(family, kind, proto) as s:
                s.sendto(datagram, address)
        except OSError as e:
            raise ConnectionFailed(0, f"cannot send to {self.server}: {e}") from e

    def add(
        self,
        module: str,
        data: Data = b"",
        options: Optional[Mapping[str, Any]] = None,
    ) -> int:
        """Queues a job and returns its id; fetch its answer with get().

        ``options`` are the job's queue options, sent as
        ``queue:add?<options>:`` in the form PHP's http_build_query writes:
        ``delay`` (seconds) or ``at`` (Unix time), ``priority`` (high,
        normal, low), ``retries`` (0-25), ``key`` (one held job per key: a
        repeat add returns the same id) and ``timeout`` (seconds). A bad or
        unknown one is raised as the daemon's ``400``; nothing is added.
        """
        add = b"queue:add:"
        if options:
            add = b"queue:add?" + urlencode(options).encode("ascii") + b":"
        answer = self._ask(add + _call(module, data), self.timeout)
        m = re.fullmatch(rb"id:([0-9]+)", answer)
        if m is None:
            raise BgjobError(0, f"unexpected answer to queue:add: {answer!r}")
        return int(m.group(1))

    def check(self, job_id: int) -> JobState:
        """Where the job is: waiting, running or done."""
        answer = self._ask(b"queue:check:id:%d" % job_id, self.timeout)
        try:
            return JobState(int(answer))
        except ValueError:
            raise BgjobError(
                0, f"unexpected answer to queue:check: {answer!r}"
            ) from None

    def get(self, job_id: int, timeout: Optional[float] = None) -> bytes:
        """The job's answer, exactly what a direct call would have answered;
        the daemon then forgets the result. A module's error is raised as
        from run().

        Without a timeout it waits as long as the job takes (and raises
        Cancelled if the job is cancelled meanwhile). With one, it checks the
        job until it is done, then fetches it; when the time passes first it
        raises Timeout and the job keeps running, its result kept for a later
        get(). (A fetch abandoned while it waits would still take the result.)
        """
        if timeout is None:
            return self._ask(b"queue:get:id:%d" % job_id, None)
        deadline = time.monotonic() + timeout
        pause = 0.01
        while self.check(job_id) != JobState.DONE:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout(0, f"job {job_id} not done within {timeout} s")
            time.sleep(min(pause, left))
            pause = min(pause * 2, 0.25)
        return self._ask(b"queue:get:id:%d" % job_id, self.timeout)

    def cancel(self, job_id: int) -> str:
        """Removes a waiting job, kills a running one or drops a result;
        returns the daemon's answer, which says which
        (``cancelled: waiting job removed``, ``cancelled: running job
        killed``, ``cancelled: result dropped``)."""
        return self._ask(b"queue:cancel:id:%d" % job_id, self.timeout).decode()

    def info(self, job_id: int) -> Dict[str, str]:
        """The job's receipt (module, status, attempts, exit_code, wall_ms,
        bytes_in, module_sha256, ...), also for a while after it was fetched."""
        return _fields(self._ask(b"queue:info:id:%d" % job_id, self.timeout))

    def stats(self) -> Dict[str, str]:
        """The daemon's counters (uptime_secs, jobs_waiting, jobs_running, ...)."""
        return _fields(self._ask(b"queue:stats", self.timeout))

    def _ask(self, request: bytes, timeout: Optional[float]) -> bytes:
        """One exchange: connect, write, half-close, read to the end.
        ``timeout`` bounds the whole exchange (None: no bound)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            s = socket.create_connection(self.address, timeout=self.connect_timeout)
        except OSError as e:
            raise ConnectionFailed(0, f"cannot connect to {self.server}: {e}") from e
        chunks = []
        with s:
            try:
                try:
                    s.settimeout(_left(deadline, self.server))
                    s.sendall(request)
                    s.shutdown(socket.SHUT_WR)
                except (BrokenPipeError, ConnectionResetError):
                    # The daemon may have answered and stopped reading (a
                    # request too large): its answer says why.
                    pass
                while True:
                    s.settimeout(_left(deadline, self.server))
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
            except socket.timeout:
                raise Timeout(
                    0, f"no answer from {self.server} within {timeout} s"
                ) from None
            except ConnectionResetError as e:
                if not chunks:
                    raise ConnectionFailed(0, f"{self.server}: {e}") from e
        answer = b"".join(chunks)
        error = error_from_answer(answer)
        if error is not None:
            raise error
        return answer


def _left(deadline: Optional[float], server: str) -> Optional[float]:
    """The socket timeout that is left before the deadline."""
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise Timeout(0, f"no answer from {server} in time")
    return left


def _call(module: str, data: Data) -> bytes:
    """``module:data``, once the module name is one the daemon would call as given."""
    if not _MODULE_NAME.fullmatch(module):
        raise ValueError(f'not a module name: "{module}" (letters, digits, - and _)')
    if module == "queue":
        raise ValueError('"queue" names the daemon\'s queue, not a module')
    if isinstance(data, str):
        data = data.encode()
    return module.encode() + b":" + bytes(data)


def _fields(answer: bytes) -> Dict[str, str]:
    """``key: value`` lines as a dict."""
    fields = {}
    for line in answer.decode("utf-8", "replace").split("\n"):
        key, sep, value = line.partition(": ")
        if sep:
            fields[key] = value
    return fields
