<?php

declare(strict_types=1);

namespace Bgjob\Tests;

use Bgjob\BgjobException;
use Bgjob\Busy;
use Bgjob\Cancelled;
use Bgjob\Client;
use Bgjob\ConnectionFailed;
use Bgjob\Forbidden;
use Bgjob\JobState;
use Bgjob\ModuleFailed;
use Bgjob\NotFound;
use Bgjob\Timeout;
use Bgjob\TooLarge;
use Bgjob\UnknownModule;
use PHPUnit\Framework\TestCase;

/**
 * Against real daemons, whose addresses come from the environment (the
 * suite's tests/integration/client_libraries.rs starts them):
 * - BGJOB_TEST_SERVER: modules test, fail, echo (cat), sleep (sleeps its
 *   data's seconds, then answers "slept") and note (writes the lines after
 *   its first into BGJOB_TEST_NOTES/<first line>); job time limit 2 s.
 * - BGJOB_TEST_LIMITED_SERVER: the same modules, a listener serving only
 *   test and sleep, one job at a time, one waiting, requests of at most
 *   1024 bytes, and only a half-close ends a request (request_gap_ms 0;
 *   idle_timeout_secs 10).
 */
final class ClientTest extends TestCase
{
    private static function env(string $name): string
    {
        $value = getenv($name);
        if ($value === false || $value === '') {
            self::fail("$name is not set: these tests need a running bgjobd");
        }
        return $value;
    }

    private static function client(float $timeout = 20.0): Client
    {
        return new Client(self::env('BGJOB_TEST_SERVER'), 5.0, $timeout);
    }

    /** The limited daemon, once the jobs of earlier tests have ended. */
    private static function limited(): Client
    {
        // Answers within 5 s, before the daemon's idle timeout (10 s) would
        // end a request that was not half-closed.
        $client = new Client(self::env('BGJOB_TEST_LIMITED_SERVER'), 5.0, 5.0);
        self::until('the limited daemon is idle', function () use ($client): bool {
            $stats = $client->stats();
            return $stats['jobs_running'] === '0' && $stats['jobs_waiting'] === '0';
        });
        return $client;
    }

    private static function until(string $what, callable $check): void
    {
        $deadline = microtime(true) + 10;
        while (!$check()) {
            if (microtime(true) > $deadline) {
                self::fail("timed out waiting until $what");
            }
            usleep(20000);
        }
    }

    /** Runs $call and returns what it threw, which must be a $class. */
    private static function thrown(string $class, callable $call): BgjobException
    {
        try {
            $call();
        } catch (BgjobException $e) {
            self::assertInstanceOf($class, $e, $e->getMessage());
            return $e;
        }
        self::fail("no $class thrown");
    }

    public function testRunAnswersTheModulesOutputByteForByte(): void
    {
        $bytes = implode('', array_map('chr', range(0, 255)));
        $this->assertSame($bytes, self::client()->run('echo', $bytes));
        $this->assertSame('Test', self::client()->run('test'));
        $this->assertSame('', self::client()->run('echo'), 'an empty answer is an answer');
    }

    public function testTheRequestEndsWhenTheClientHalfCloses(): void
    {
        // sleep reads its data to the end, which only the half-close marks
        // on the limited daemon: without it the call would time out.
        $this->assertSame('slept', self::limited()->run('sleep', '0'));
    }

    public function testAnUnknownModuleIsUnknownModule(): void
    {
        $e = self::thrown(UnknownModule::class, fn () => self::client()->run('nosuchmodule', 'x'));
        $this->assertSame(400, $e->getCode());
        $this->assertSame('Unknown request', $e->getText());
        $this->assertSame('400: Unknown request', $e->getMessage());
    }

    public function testAFailingModuleIsModuleFailed(): void
    {
        $e = self::thrown(ModuleFailed::class, fn () => self::client()->run('fail'));
        $this->assertSame(500, $e->getCode());
        $this->assertSame('Module fail failed (exit status 1)', $e->getText());
    }

    public function testAModulePastItsTimeLimitIsTimeout(): void
    {
        $e = self::thrown(Timeout::class, fn () => self::client()->run('sleep', '10'));
        $this->assertSame(504, $e->getCode());
        $this->assertSame('Module sleep timed out', $e->getText());
    }

    public function testNoAnswerWithinTheClientsTimeoutIsTimeout(): void
    {
        $e = self::thrown(Timeout::class, fn () => self::client(0.3)->run('sleep', '1.5'));
        $this->assertSame(0, $e->getCode());
    }

    public function testAnUnreachableDaemonIsConnectionFailed(): void
    {
        $server = stream_socket_server('tcp://127.0.0.1:0');
        $address = stream_socket_get_name($server, false);
        fclose($server);
        $e = self::thrown(ConnectionFailed::class, fn () => (new Client($address, 2.0, 2.0))->run('test'));
        $this->assertSame(0, $e->getCode());
        $this->assertStringContainsString($address, $e->getMessage());
    }

    public function testAConnectionNotAcceptedWithinTheConnectTimeoutIsConnectionFailed(): void
    {
        // A listener whose accept queue is full: the kernel drops further
        // connection attempts, so connecting waits for the connect timeout.
        $context = stream_context_create(['socket' => ['backlog' => 0]]);
        $server = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr, STREAM_SERVER_BIND | STREAM_SERVER_LISTEN, $context);
        $address = stream_socket_get_name($server, false);
        $queued = [];
        for ($i = 0; $i < 4; $i++) {
            $queued[] = stream_socket_client("tcp://$address", $errno, $errstr, 1, STREAM_CLIENT_CONNECT | STREAM_CLIENT_ASYNC_CONNECT);
        }
        usleep(100000);
        $start = microtime(true);
        $e = self::thrown(ConnectionFailed::class, fn () => (new Client($address, 0.3, 30.0))->run('test'));
        $this->assertLessThan(10.0, microtime(true) - $start, 'the connect timeout bounds the wait');
        $this->assertSame(0, $e->getCode());
        $this->assertStringContainsString('timed out', $e->getMessage());
    }

    public function testAJobAddedIsFetchedWithTheSameBytes(): void
    {
        $client = self::client();
        $bytes = "queued\0\xff\n" . str_repeat('x', 100000);
        $id = $client->add('echo', $bytes);
        $this->assertGreaterThan(0, $id);
        $this->assertSame($bytes, $client->get($id));
    }

    public function testAFailedJobIsModuleFailedWhenFetched(): void
    {
        $client = self::client();
        $id = $client->add('fail');
        $e = self::thrown(ModuleFailed::class, fn () => $client->get($id, 10.0));
        $this->assertSame('Module fail failed (exit status 1)', $e->getText());
    }

    public function testCheckFollowsAJobFromWaitingToDone(): void
    {
        $client = self::limited();
        $first = $client->add('sleep', '1');
        self::until('the first job runs', fn () => $client->check($first) === JobState::Running);
        $second = $client->add('test');
        $this->assertSame(JobState::Waiting, $client->check($second));
        $this->assertSame('slept', $client->get($first, 10.0));
        self::until('the second job is done', fn () => $client->check($second) === JobState::Done);
        $this->assertSame('Test', $client->get($second));
        self::thrown(NotFound::class, fn () => $client->check($second));
    }

    public function testAFullWaitingLineIsBusy(): void
    {
        $client = self::limited();
        $running = $client->add('sleep', '10');
        self::until('the job runs', fn () => $client->check($running) === JobState::Running);
        $waiting = $client->add('test');
        $e = self::thrown(Busy::class, fn () => $client->add('test'));
        $this->assertSame('503: Busy', $e->getMessage());
        self::thrown(Busy::class, fn () => $client->run('test'));
        $this->assertSame('cancelled: waiting job removed', $client->cancel($waiting));
        $this->assertSame('cancelled: running job killed', $client->cancel($running));
    }

    public function testAModuleTheListenerDoesNotServeIsForbidden(): void
    {
        $e = self::thrown(Forbidden::class, fn () => self::limited()->run('echo', 'x'));
        $this->assertSame(403, $e->getCode());
    }

    public function testARequestOverTheLimitIsTooLarge(): void
    {
        $e = self::thrown(TooLarge::class, fn () => self::limited()->run('test', str_repeat('x', 5000)));
        $this->assertSame(413, $e->getCode());
    }

    public function testGetWithATimeoutLeavesTheResultForLater(): void
    {
        $client = self::client();
        $id = $client->add('sleep', '1');
        $e = self::thrown(Timeout::class, fn () => $client->get($id, 0.2));
        $this->assertSame(0, $e->getCode());
        $this->assertSame('slept', $client->get($id, 10.0));
    }

    public function testGetOfAJobCancelledWhileItWaitsIsCancelled(): void
    {
        $client = self::client();
        for ($attempt = 1;; $attempt++) {
            $id = $client->add('sleep', '5');
            self::until('the job runs', fn () => $client->check($id) === JobState::Running);
            // A second process waits in get() while this one cancels.
            $code = sprintf(
                'require %s; try { (new Bgjob\Client(%s))->get(%d); echo "answered"; }'
                . ' catch (Bgjob\BgjobException $e) { echo get_class($e), " ", $e->getMessage(); }',
                var_export(__DIR__ . '/bootstrap.php', true),
                var_export(self::env('BGJOB_TEST_SERVER'), true),
                $id
            );
            $waiter = proc_open([PHP_BINARY, '-r', $code], [1 => ['pipe', 'w']], $pipes);
            self::until('the fetch waits', fn () => (int) $client->stats()['connections_open'] >= 2);
            usleep(100000);
            $this->assertSame('cancelled: running job killed', $client->cancel($id));
            $out = stream_get_contents($pipes[1]);
            proc_close($waiter);
            // The cancel may rarely overtake the fetch on a loaded machine.
            if (!str_starts_with($out, 'Bgjob\NotFound') || $attempt === 3) {
                break;
            }
        }
        $this->assertSame('Bgjob\Cancelled 410: Module sleep cancelled', $out);
    }

    public function testAJobNotHeldIsNotFound(): void
    {
        $client = self::client();
        $id = $client->add('test');
        $this->assertSame('Test', $client->get($id));
        $e = self::thrown(NotFound::class, fn () => $client->get($id));
        $this->assertSame('404: Unknown job', $e->getMessage());
        self::thrown(NotFound::class, fn () => $client->check($id));
        self::thrown(NotFound::class, fn () => $client->cancel($id));
    }

    public function testCancelDropsAResult(): void
    {
        $client = self::client();
        $id = $client->add('test');
        self::until('the job is done', fn () => $client->check($id) === JobState::Done);
        $this->assertSame('cancelled: result dropped', $client->cancel($id));
        self::thrown(NotFound::class, fn () => $client->get($id));
    }

    public function testInfoIsTheJobsReceipt(): void
    {
        $client = self::client();
        $id = $client->add('echo', 'abc');
        $this->assertSame('abc', $client->get($id));
        $info = $client->info($id);
        $this->assertSame((string) $id, $info['id']);
        $this->assertSame('echo', $info['module']);
        $this->assertSame('fetched', $info['status']);
        $this->assertSame('1', $info['attempts']);
        $this->assertSame('0', $info['exit_code']);
        $this->assertSame('3', $info['bytes_in']);
        $this->assertSame('3', $info['bytes_out']);
        $this->assertMatchesRegularExpression('/^[0-9a-f]{64}$/', $info['module_sha256']);
    }

    public function testStatsCountTheJobs(): void
    {
        $client = self::client();
        $before = (int) $client->stats()['total_ok'];
        $client->run('test');
        $stats = $client->stats();
        $this->assertSame($before + 1, (int) $stats['total_ok']);
        $this->assertArrayHasKey('uptime_secs', $stats);
    }

    public function testSendReachesTheModuleOverUdp(): void
    {
        $name = 'php-' . bin2hex(random_bytes(4));
        self::client()->send('note', "$name\nhello over udp");
        $file = self::env('BGJOB_TEST_NOTES') . "/$name";
        self::until('the module wrote its note', fn () => @file_get_contents($file) === "hello over udp");
        $this->assertSame('hello over udp', file_get_contents($file));
    }

    public function testQueueOptionsReachTheDaemon(): void
    {
        $client = self::client();
        $key = 'invoice ' . bin2hex(random_bytes(4));
        $id = $client->add('echo', 'later', ['delay' => 0.5, 'key' => $key, 'priority' => 'high']);
        $this->assertSame(JobState::Waiting, $client->check($id), 'scheduled');
        $this->assertSame('scheduled', $client->info($id)['status']);
        $this->assertSame($id, $client->add('echo', 'again', ['key' => $key]), 'one job per key');
        $this->assertSame('later', $client->get($id));
    }

    public function testABadQueueOptionIsTheDaemons400(): void
    {
        try {
            self::client()->add('echo', 'x', ['delay' => 'soon']);
            $this->fail('a bad option was accepted');
        } catch (BgjobException $e) {
            $this->assertSame(400, $e->getCode());
            $this->assertSame('Bad option delay', $e->getText());
        }
    }

    public function testModuleNamesTheDaemonWouldChangeAreRefused(): void
    {
        foreach (['../test', 'a:b', '', 'queue', "test\n"] as $name) {
            try {
                self::client()->run($name, 'x');
                $this->fail("\"$name\" was sent");
            } catch (\InvalidArgumentException $e) {
                $this->assertNotSame('', $e->getMessage());
            }
        }
        $this->expectException(\InvalidArgumentException::class);
        self::client()->send('a b');
    }

    public function testTheServerIsHostAndPort(): void
    {
        $this->assertSame('Test', (new Client(self::env('BGJOB_TEST_SERVER')))->run('test'));
        new Client('[::1]:12341');
        $this->expectException(\InvalidArgumentException::class);
        new Client('localhost');
    }

    public function testOnlyCodedAnswersAreErrors(): void
    {
        $this->assertNull(BgjobException::fromAnswer('Test'));
        $this->assertNull(BgjobException::fromAnswer('600: not a code'));
        $this->assertNull(BgjobException::fromAnswer('id:5'));
        $this->assertInstanceOf(NotFound::class, BgjobException::fromAnswer(" \n404: LESS not available"));
        $other = BgjobException::fromAnswer("418: I'm a teapot\n");
        $this->assertSame(BgjobException::class, get_class($other));
        $this->assertSame(418, $other->getCode());
        $this->assertSame("I'm a teapot", $other->getText());
    }
}
