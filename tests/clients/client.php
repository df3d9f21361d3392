<?php
// PHP clients of bgjobd. Usage: php client.php PORT
$port = (int)$argv[1];

// The seed's style: write, then read until the daemon closes. The daemon
// ends the request after a short quiet gap (request_gap_ms).
function bgjob_classic($port, $request) {
    $fp = @stream_socket_client("tcp://127.0.0.1:$port", $errno, $errstr, 5);
    if (!$fp) {
        return null;
    }
    fwrite($fp, $request);
    $answer = stream_get_contents($fp);
    fclose($fp);
    return $answer;
}

// Better: half-close after writing, so the daemon answers at once, and
// check the seed-style error form.
function bgjob($port, $module, $data) {
    $fp = @stream_socket_client("tcp://127.0.0.1:$port", $errno, $errstr, 5);
    if (!$fp) {
        throw new RuntimeException("bgjobd unreachable: $errstr");
    }
    fwrite($fp, "$module:$data");
    stream_socket_shutdown($fp, STREAM_SHUT_WR);
    $answer = stream_get_contents($fp);
    fclose($fp);
    if (preg_match('/^[45][0-9]{2}:/', ltrim($answer))) {
        throw new RuntimeException($answer);
    }
    return $answer;
}

echo bgjob_classic($port, 'upper:hello classic'), "\n";
echo bgjob($port, 'upper', 'hello half-closed'), "\n";
$id = substr(bgjob($port, 'queue', 'add:upper:queued from php'), 3);
echo bgjob($port, 'queue', "get:id:$id"), "\n";
try {
    bgjob($port, 'nosuchmodule', '');
} catch (RuntimeException $e) {
    echo "error: ", $e->getMessage(), "\n";
}
