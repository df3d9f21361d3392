"""Against real daemons, whose addresses come from the environment (the
suite's tests/integration/client_libraries.rs starts them):

- BGJOB_TEST_SERVER: modules test, fail, echo (cat), sleep (sleeps its
  data's seconds, then answers "slept") and note (writes the lines after its
  first into BGJOB_TEST_NOTES/<first line>); job time limit 2 s.
- BGJOB_TEST_LIMITED_SERVER: the same modules, a listener serving only test
  and sleep, one job at a time, one waiting, requests of at most 1024 bytes,
  and only a half-close ends a request (request_gap_ms 0; idle_timeout_secs
  10).
"""

import os
import secrets
import socket
import threading
import time

import pytest

import bgjob
from bgjob import (
    BgjobError,
    Busy,
    Cancelled,
    Client,
    ConnectionFailed,
    Forbidden,
    JobState,
    ModuleFailed,
    NotFound,
    Timeout,
    TooLarge,
    UnknownModule,
    error_from_answer,
)


def env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: these tests need a running bgjobd")
    return value


def client(timeout=20.0):
    return Client(env("BGJOB_TEST_SERVER"), 5.0, timeout)


def until(what, check):
    deadline = time.monotonic() + 10
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.02)


def limited():
    """The limited daemon, once the jobs of earlier tests have ended."""
    # Answers within 5 s, before the daemon's idle timeout (10 s) would end
    # a request that was not half-closed.
    c = Client(env("BGJOB_TEST_LIMITED_SERVER"), 5.0, 5.0)

    def idle():
        stats = c.stats()
        return stats["jobs_running"] == "0" and stats["jobs_waiting"] == "0"

    until("the limited daemon is idle", idle)
    return c


def test_run_answers_the_modules_output_byte_for_byte():
    data = bytes(range(256))
    assert client().run("echo", data) == data
    assert client().run("echo", "text é") == "text é".encode()
    assert client().run("test") == b"Test"
    assert client().run("echo") == b"", "an empty answer is an answer"


def test_the_request_ends_when_the_client_half_closes():
    # sleep reads its data to the end, which only the half-close marks on
    # the limited daemon: without it the call would time out.
    assert limited().run("sleep", b"0") == b"slept"


def test_an_unknown_module_is_unknown_module():
    with pytest.raises(UnknownModule) as e:
        client().run("nosuchmodule", b"x")
    assert e.value.code == 400
    assert e.value.text == "Unknown request"
    assert str(e.value) == "400: Unknown request"
    assert isinstance(e.value, BgjobError)


def test_a_failing_module_is_module_failed():
    with pytest.raises(ModuleFailed) as e:
        client().run("fail")
    assert e.value.code == 500
    assert e.value.text == "Module fail failed (exit status 1)"


def test_a_module_past_its_time_limit_is_timeout():
    with pytest.raises(Timeout) as e:
        client().run("sleep", b"10")
    assert e.value.code == 504
    assert e.value.text == "Module sleep timed out"


def test_no_answer_within_the_clients_timeout_is_timeout():
    with pytest.raises(Timeout) as e:
        client(0.3).run("sleep", b"1.5")
    assert e.value.code == 0


def test_an_unreachable_daemon_is_connection_failed():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = "127.0.0.1:%d" % s.getsockname()[1]
    with pytest.raises(ConnectionFailed) as e:
        Client(address, 2.0, 2.0).run("test")
    assert e.value.code == 0
    assert address in str(e.value)


def test_a_connection_not_accepted_within_the_connect_timeout_is_connection_failed():
    # A listener whose accept queue is full: the kernel drops further
    # connection attempts, so connecting waits for the connect timeout.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        address = "127.0.0.1:%d" % server.getsockname()[1]
        queued = []
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(server.getsockname())
            queued.append(s)
        time.sleep(0.1)
        start = time.monotonic()
        with pytest.raises(ConnectionFailed) as e:
            Client(address, 0.3, 30.0).run("test")
        assert time.monotonic() - start < 10.0, "the connect timeout bounds the wait"
        assert e.value.code == 0
        assert "timed out" in str(e.value)
        for s in queued:
            s.close()


def test_a_job_added_is_fetched_with_the_same_bytes():
    c = client()
    data = b"queued\0\xff\n" + b"x" * 100000
    job = c.add("echo", data)
    assert job > 0
    assert c.get(job) == data


def test_a_failed_job_is_module_failed_when_fetched():
    c = client()
    job = c.add("fail")
    with pytest.raises(ModuleFailed) as e:
        c.get(job, 10.0)
    assert e.value.text == "Module fail failed (exit status 1)"


def test_check_follows_a_job_from_waiting_to_done():
    c = limited()
    first = c.add("sleep", b"1")
    until("the first job runs", lambda: c.check(first) == JobState.RUNNING)
    second = c.add("test")
    assert c.check(second) == JobState.WAITING
    assert c.get(first, 10.0) == b"slept"
    until("the second job is done", lambda: c.check(second) == JobState.DONE)
    assert c.get(second) == b"Test"
    with pytest.raises(NotFound):
        c.check(second)


def test_a_full_waiting_line_is_busy():
    c = limited()
    running = c.add("sleep", b"10")
    until("the job runs", lambda: c.check(running) == JobState.RUNNING)
    waiting = c.add("test")
    with pytest.raises(Busy) as e:
        c.add("test")
    assert str(e.value) == "503: Busy"
    with pytest.raises(Busy):
        c.run("test")
    assert c.cancel(waiting) == "cancelled: waiting job removed"
    assert c.cancel(running) == "cancelled: running job killed"


def test_a_module_the_listener_does_not_serve_is_forbidden():
    with pytest.raises(Forbidden) as e:
        limited().run("echo", b"x")
    assert e.value.code == 403


def test_a_request_over_the_limit_is_too_large():
    with pytest.raises(TooLarge) as e:
        limited().run("test", b"x" * 5000)
    assert e.value.code == 413


def test_get_with_a_timeout_leaves_the_result_for_later():
    c = client()
    job = c.add("sleep", b"1")
    with pytest.raises(Timeout) as e:
        c.get(job, 0.2)
    assert e.value.code == 0
    assert c.get(job, 10.0) == b"slept"


def test_get_of_a_job_cancelled_while_it_waits_is_cancelled():
    c = client()
    for attempt in range(3):
        job = c.add("sleep", b"5")
        until("the job runs", lambda: c.check(job) == JobState.RUNNING)
        outcome = []

        def wait():
            try:
                outcome.append(client().get(job))
            except BgjobError as e:
                outcome.append(e)

        # Another thread waits in get() while this one cancels.
        waiter = threading.Thread(target=wait)
        waiter.start()
        until("the fetch waits", lambda: int(c.stats()["connections_open"]) >= 2)
        time.sleep(0.1)
        assert c.cancel(job) == "cancelled: running job killed"
        waiter.join(20)
        # The cancel may rarely overtake the fetch on a loaded machine.
        if not isinstance(outcome[0], NotFound):
            break
    assert isinstance(outcome[0], Cancelled), outcome
    assert str(outcome[0]) == "410: Module sleep cancelled"


def test_a_job_not_held_is_not_found():
    c = client()
    job = c.add("test")
    assert c.get(job) == b"Test"
    with pytest.raises(NotFound) as e:
        c.get(job)
    assert str(e.value) == "404: Unknown job"
    with pytest.raises(NotFound):
        c.check(job)
    with pytest.raises(NotFound):
        c.cancel(job)


def test_cancel_drops_a_result():
    c = client()
    job = c.add("test")
    until("the job is done", lambda: c.check(job) == JobState.DONE)
    assert c.cancel(job) == "cancelled: result dropped"
    with pytest.raises(NotFound):
        c.get(job)


def test_info_is_the_jobs_receipt():
    c = client()
    job = c.add("echo", b"abc")
    assert c.get(job) == b"abc"
    info = c.info(job)
    assert info["id"] == str(job)
    assert info["module"] == "echo"
    assert info["status"] == "fetched"
    assert info["attempts"] == "1"
    assert info["exit_code"] == "0"
    assert info["bytes_in"] == "3"
    assert info["bytes_out"] == "3"
    assert len(info["module_sha256"]) == 64
    int(info["module_sha256"], 16)


def test_stats_count_the_jobs():
    c = client()
    before = int(c.stats()["total_ok"])
    c.run("test")
    stats = c.stats()
    assert int(stats["total_ok"]) == before + 1
    assert "uptime_secs" in stats


def test_send_reaches_the_module_over_udp():
    name = "py-" + secrets.token_hex(4)
    client().send("note", f"{name}\nhello over udp")
    path = os.path.join(env("BGJOB_TEST_NOTES"), name)

    def written():
        try:
            with open(path, "rb") as f:
                return f.read() == b"hello over udp"
        except FileNotFoundError:
            return False

    until("the module wrote its note", written)


def test_queue_options_reach_the_daemon():
    c = client()
    key = "invoice " + os.urandom(4).hex()
    job = c.add("echo", b"later", {"delay": 0.5, "key": key, "priority": "high"})
    assert c.check(job) == JobState.WAITING, "scheduled"
    assert c.info(job)["status"] == "scheduled"
    assert c.add("echo", b"again", {"key": key}) == job, "one job per key"
    assert c.get(job) == b"later"
    assert isinstance(c.add("test", b"", {}), int)


def test_a_bad_queue_option_is_the_daemons_400():
    with pytest.raises(BgjobError) as raised:
        client().add("echo", b"x", {"delay": "soon"})
    assert raised.value.code == 400
    assert raised.value.text == "Bad option delay"


def test_module_names_the_daemon_would_change_are_refused():
    for name in ["../test", "a:b", "", "queue", "test\n"]:
        with pytest.raises(ValueError):
            client().run(name, b"x")
    with pytest.raises(ValueError):
        client().send("a b")


def test_the_server_is_host_and_port():
    assert Client(env("BGJOB_TEST_SERVER")).run("test") == b"Test"
    assert Client("[::1]:12341").address == ("::1", 12341)
    with pytest.raises(ValueError):
        Client("localhost")


def test_only_coded_answers_are_errors():
    assert error_from_answer(b"Test") is None
    assert error_from_answer(b"600: not a code") is None
    assert error_from_answer(b"id:5") is None
    assert isinstance(error_from_answer(b" \n404: LESS not available"), NotFound)
    other = error_from_answer(b"418: I'm a teapot\n")
    assert type(other) is BgjobError
    assert other.code == 418
    assert other.text == "I'm a teapot"


def test_the_package_exports_its_surface():
    assert set(bgjob.__all__) >= {"Client", "JobState", "BgjobError", "Timeout"}
