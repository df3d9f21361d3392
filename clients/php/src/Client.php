<?php

declare(strict_types=1);

namespace Bgjob;

/**
 * A client of bgjobd. Each call is one TCP connection (or one UDP datagram):
 * the request is written, the write side is shut down (so the daemon ends
 * the request at once, without waiting for a quiet gap), and the answer is
 * read until the daemon closes. An `NNN: text` answer is thrown as a
 * BgjobException subclass.
 */
final class Client
{
    /** A module name as the daemon keeps it; anything else would be changed or split. */
    private const MODULE_NAME = '/^[A-Za-z0-9_-]+\z/';

    /** The largest payload of a UDP datagram (over IPv6, and IPv4 less its headers). */
    private const MAX_DATAGRAM = 65507;

    private string $host;
    private int $port;

    /**
     * @param string $server         HOST:PORT, as bgjob's --server ([::1]:12341 for IPv6)
     * @param float  $connectTimeout seconds to wait for the connection
     * @param float  $timeout        seconds to wait for each answer; give it more
     *                               than the daemon's job time limit for direct calls
     */
    public function __construct(
        private string $server = '127.0.0.1:12341',
        private float $connectTimeout = 5.0,
        private float $timeout = 60.0,
    ) {
        if (!preg_match('/^(?:\[([^\]]+)\]|([^:\[\]]+)):([0-9]{1,5})\z/', $server, $m)) {
            throw new \InvalidArgumentException("server must be HOST:PORT, not \"$server\"");
        }
        $this->host = $m[1] !== '' ? "[$m[1]]" : $m[2];
        $this->port = (int) $m[3];
    }

    /** Runs a module and returns its answer, byte for byte. */
    public function run(string $module, string $data = ''): string
    {
        return $this->ask(self::call($module, $data), $this->timeout);
    }

    /**
     * Runs a module over UDP, fire and forget: nothing is answered, and a
     * datagram the daemon refuses or that is lost is not reported.
     */
    public function send(string $module, string $data = ''): void
    {
        $datagram = self::call($module, $data);
        if (strlen($datagram) > self::MAX_DATAGRAM) {
            throw new \InvalidArgumentException('a datagram holds at most ' . self::MAX_DATAGRAM . ' bytes');
        }
        $fp = @stream_socket_client("udp://{$this->host}:{$this->port}", $errno, $errstr);
        if ($fp === false) {
            throw new ConnectionFailed(0, "cannot send to {$this->server}: $errstr");
        }
        try {
            if (@fwrite($fp, $datagram) !== strlen($datagram)) {
                throw new ConnectionFailed(0, "cannot send to {$this->server}");
            }
        } finally {
            fclose($fp);
        }
    }

    /**
     * Queues a job and returns its id. The job runs in the background; fetch
     * its answer with get().
     *
     * @param array<string, scalar> $options the job's queue options, sent as
     *        `queue:add?<options>:` in http_build_query's form: `delay`
     *        (seconds) or `at` (Unix time), `priority` (high, normal, low),
     *        `retries` (0-25), `key` (one held job per key: a repeat add
     *        returns the same id) and `timeout` (seconds). A bad or unknown
     *        one is thrown as the daemon's `400`, and nothing is added.
     */
    public function add(string $module, string $data = '', array $options = []): int
    {
        $add = $options === [] ? 'queue:add:' : 'queue:add?' . http_build_query($options) . ':';
        $answer = $this->ask($add . self::call($module, $data), $this->timeout);
        if (!preg_match('/^id:([0-9]+)\z/', $answer, $m)) {
            throw new BgjobException(0, "unexpected answer to queue:add: $answer");
        }
        return (int) $m[1];
    }

    /** Where the job is: waiting, running or done. */
    public function check(int $id): JobState
    {
        $answer = $this->ask("queue:check:id:$id", $this->timeout);
        return JobState::tryFrom(preg_match('/^[0-9]+\z/', $answer) ? (int) $answer : -1)
            ?? throw new BgjobException(0, "unexpected answer to queue:check: $answer");
    }

    /**
     * The job's answer, exactly what a direct call would have answered; the
     * daemon then forgets the result. A module's error is thrown as from run().
     *
     * Without a timeout it waits as long as the job takes (and throws
     * Cancelled if the job is cancelled meanwhile). With one, it checks the
     * job until it is done, then fetches it; when the time passes first it
     * throws Timeout and the job keeps running, its result kept for a later
     * get(). (A fetch abandoned while it waits would still take the result.)
     */
    public function get(int $id, ?float $timeout = null): string
    {
        if ($timeout === null) {
            return $this->ask("queue:get:id:$id", null);
        }
        $deadline = microtime(true) + $timeout;
        $pause = 0.01;
        while ($this->check($id) !== JobState::Done) {
            $left = $deadline - microtime(true);
            if ($left <= 0) {
                throw new Timeout(0, "job $id not done within {$timeout} s");
            }
            usleep((int) (min($pause, $left) * 1e6));
            $pause = min($pause * 2, 0.25);
        }
        return $this->ask("queue:get:id:$id", $this->timeout);
    }

    /**
     * Removes a waiting job, kills a running one or drops a result; returns
     * the daemon's answer, which says which (`cancelled: waiting job removed`,
     * `cancelled: running job killed`, `cancelled: result dropped`).
     */
    public function cancel(int $id): string
    {
        return $this->ask("queue:cancel:id:$id", $this->timeout);
    }

    /**
     * The job's receipt (module, status, attempts, exit_code, wall_ms,
     * bytes_in, module_sha256, ...), also for a while after it was fetched.
     *
     * @return array<string, string>
     */
    public function info(int $id): array
    {
        return self::fields($this->ask("queue:info:id:$id", $this->timeout));
    }

    /**
     * The daemon's counters (uptime_secs, jobs_waiting, jobs_running, ...).
     *
     * @return array<string, string>
     */
    public function stats(): array
    {
        return self::fields($this->ask('queue:stats', $this->timeout));
    }

    /** `module:data`, once the module name is one the daemon would call as given. */
    private static function call(string $module, string $data): string
    {
        if (!preg_match(self::MODULE_NAME, $module)) {
            throw new \InvalidArgumentException("not a module name: \"$module\" (letters, digits, - and _)");
        }
        if ($module === 'queue') {
            throw new \InvalidArgumentException('"queue" names the daemon\'s queue, not a module');
        }
        return "$module:$data";
    }

    /** @return array<string, string> `key: value` lines as an array. */
    private static function fields(string $answer): array
    {
        $fields = [];
        foreach (explode("\n", $answer) as $line) {
            if (str_contains($line, ': ')) {
                [$key, $value] = explode(': ', $line, 2);
                $fields[$key] = $value;
            }
        }
        return $fields;
    }

    /**
     * One exchange: connect, write, half-close, read to the end. $timeout
     * bounds the whole exchange (null: no bound).
     */
    private function ask(string $request, ?float $timeout): string
    {
        $deadline = $timeout === null ? null : microtime(true) + $timeout;
        $fp = @stream_socket_client(
            "tcp://{$this->host}:{$this->port}",
            $errno,
            $errstr,
            $this->connectTimeout
        );
        if ($fp === false) {
            throw new ConnectionFailed(0, "cannot connect to {$this->server}: $errstr");
        }
        try {
            for ($sent = 0; $sent < strlen($request); $sent += $n) {
                $this->wait($fp, $deadline);
                $n = @fwrite($fp, substr($request, $sent, 1 << 20));
                $this->timedOut($fp, $timeout);
                if ($n === false || $n === 0) {
                    // The daemon may have answered and stopped reading (a
                    // request too large): its answer says why.
                    break;
                }
            }
            stream_socket_shutdown($fp, STREAM_SHUT_WR);
            $answer = '';
            while (!feof($fp)) {
                $this->wait($fp, $deadline);
                $chunk = @fread($fp, 65536);
                // A read that timed out answers false (or '').
                $this->timedOut($fp, $timeout);
                if ($chunk === false) {
                    if ($answer === '') {
                        throw new ConnectionFailed(0, "the connection to {$this->server} broke");
                    }
                    break;
                }
                $answer .= $chunk;
            }
        } finally {
            fclose($fp);
        }
        $error = BgjobException::fromAnswer($answer);
        if ($error !== null) {
            throw $error;
        }
        return $answer;
    }

    /** Sets the stream's timeout to what is left before the deadline. */
    private function wait($fp, ?float $deadline): void
    {
        if ($deadline === null) {
            stream_set_timeout($fp, 86400 * 365);
            return;
        }
        $left = $deadline - microtime(true);
        if ($left <= 0) {
            throw new Timeout(0, "no answer from {$this->server} in time");
        }
        stream_set_timeout($fp, (int) $left, (int) (fmod($left, 1.0) * 1e6));
    }

    /** Throws Timeout when the stream's last read or write timed out. */
    private function timedOut($fp, ?float $timeout): void
    {
        if (stream_get_meta_data($fp)['timed_out']) {
            throw new Timeout(0, "no answer from {$this->server} within {$timeout} s");
        }
    }
}
