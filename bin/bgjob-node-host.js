// bgjobd's Node.js host: runs one request of a module written against the
// seed's BackgroundService API, unchanged. bgjobd embeds this file and runs
// `node -e <this file> <module.js> <working folder>` with the request's data
// on stdin and the job in BGJOB_MODULE / BGJOB_TRANSPORT / BGJOB_REMOTE.
//
// - A module exporting TExecute(parts, client) answers TCP and queue jobs:
//   client.write() takes strings, Buffers and Uint8Arrays (anything else is
//   answered 500, as Node's own socket throws on it), client.end() finishes;
//   a module that wrote and has nothing left to do without calling end()
//   (the seed's page never asks for it) is answered with what it wrote.
//   client.progress(n, m) says how far the job is (n of m, or n percent
//   without m), for `queue:info`: through BGJOB_PROGRESS_FD when the job
//   runs in a process of its own, as a frame from a warm worker.
// - A module exporting UExecute(parts) handles UDP datagrams; what it
//   returns is ignored.
// - parts[0] is the module name, parts[1] the data as a string.
// - A file with no exports runs as a plain script that reads stdin.
// - The module runs in the working folder it is given, as the seed's modules
//   ran in the old service's folder (`./modules/tmp/` beside its config).
// Failures answer in the seed's `NNN: text` form and exit non-zero, so the
// daemon passes the text on: a throw, a module that writes nothing and
// never calls end(), a module that exports nothing and writes nothing.
//
// With `--worker` after the folder it stays resident instead and serves
// framed jobs one at a time (see src/node/framing.rs for the framing).
'use strict';

const file = process.argv[1];
const workdir = process.argv[2];
if (process.argv[3] === '--worker') {
  serveWarm();
} else {
  runOnce();
}

function runOnce() {
  const name = process.env.BGJOB_MODULE || require('path').basename(file, '.js');
  const transport = process.env.BGJOB_TRANSPORT || 'tcp';

  let answered = false;
  function fail(text, error) {
    if (answered) return;
    answered = true;
    if (error) process.stderr.write(`${error && error.stack || error}\n`);
    process.stdout.write(`500: Module ${name} ${text}`, () => process.exit(1));
  }

  process.on('uncaughtException', (e) => fail(failure('failed', e), e));
  process.on('unhandledRejection', (e) => fail(failure('failed', e), e));

  // Track whether a plain script wrote anything, to tell it from a module
  // that exports nothing and does nothing (the seed's fail.js).
  let wrote = false;
  const stdoutWrite = process.stdout.write.bind(process.stdout);
  process.stdout.write = (...args) => {
    wrote = true;
    return stdoutWrite(...args);
  };

  let mod;
  let loaded = false;
  const refused = enterWorkdir();
  if (refused) {
    fail(refused);
    return;
  }
  try {
    mod = require(file);
    loaded = true;
  } catch (e) {
    fail(failure('failed to load', e), e);
  }

  const entry = transport === 'udp' ? mod && mod.UExecute : mod && mod.TExecute;
  const exportsSomething = mod && (typeof mod === 'function' || Object.keys(mod).length > 0);

  if (!loaded) {
    // fail() has answered
  } else if (typeof entry === 'function') {
    readStdin((data) => {
      const parts = [name, data.toString()];
      if (transport === 'udp') {
        const result = entry(parts);
        Promise.resolve(result).then(() => {}, (e) => fail(failure('failed', e), e));
        return;
      }
      const { client, settle } = makeClient(
        process.env.BGJOB_REMOTE || '',
        () => !answered,
        (body) => {
          answered = true;
          stdoutWrite(body, () => process.exit(0));
        },
        (text) => fail(text),
        {
          jobId: process.env.BGJOB_JOB_ID ? Number(process.env.BGJOB_JOB_ID) : null,
          attempt: Number(process.env.BGJOB_ATTEMPT || 1),
        },
        coldProgress(),
      );
      // Nothing left to do: what it wrote is the answer.
      process.on('beforeExit', settle);
      entry(parts, client);
    });
  } else if (exportsSomething) {
    process.on('beforeExit', () =>
      fail(`exports no ${transport === 'udp' ? 'UExecute' : 'TExecute'}`));
  } else {
    // A plain script: it has run and reads its stdin itself.
    process.on('beforeExit', () => {
      if (!wrote) fail('exports nothing and wrote nothing');
    });
  }
}

// What an error a module threw says in its answer, after `Module <name>`:
// a package it requires and that is not installed is named as such (Node's
// own message goes on with the whole require stack), anything else is
// `<what>: <message>`.
function failure(what, e) {
  const message = String((e && e.message) || e);
  const missing = e && e.code === 'MODULE_NOT_FOUND' && /^Cannot find module '([^']+)'/.exec(message);
  if (missing && !/^[./]/.test(missing[1])) {
    const spec = missing[1].split('/');
    const pkg = spec[0].startsWith('@') ? spec.slice(0, 2).join('/') : spec[0];
    return `needs the npm package ${pkg}, which is not installed`;
  }
  return `${what}: ${message}`;
}

// Enters the module's working folder; the reason it cannot, if it cannot.
function enterWorkdir() {
  if (!workdir) return null;
  try {
    process.chdir(workdir);
    return null;
  } catch (e) {
    return `cannot enter its working folder ${workdir} (${e.code || e.message})`;
  }
}

// A value a module wrote that is neither a string nor bytes, as its
// answer names it: `undefined`, `null`, `an object`, `a number` ...
function described(value) {
  if (value === undefined || value === null) return String(value);
  if (Array.isArray(value)) return 'an array';
  const type = typeof value;
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

// A progress line from client.progress(n, m): `n/m`, or `n%` without m;
// numbers are floored (the daemon takes whole numbers).
function progressLine(n, m) {
  const whole = (x) => (Number.isFinite(Number(x)) ? String(Math.floor(Number(x))) : String(x));
  return m === undefined ? `${whole(n)}%` : `${whole(n)}/${whole(m)}`;
}

// Where a cold job's progress lines go: the pipe BGJOB_PROGRESS_FD names.
// A module that cannot write there (none given, or it closed) just goes
// on: progress is a courtesy, never a failure.
function coldProgress() {
  const fd = Number(process.env.BGJOB_PROGRESS_FD);
  const fs = require('fs');
  return (line) => {
    if (!Number.isInteger(fd)) return;
    try {
      fs.writeSync(fd, `${line}\n`);
    } catch (e) {
      // ignored, as above
    }
  };
}

// The `client` a module's TExecute writes to, shaped like the socket the
// old service passed: write() takes what a socket takes (a string, with an
// optional encoding, a Buffer or a Uint8Array, and an optional callback);
// anything else, on which the socket threw, is refused with a message that
// says what was written, instead of becoming text like `[object Object]`.
// `finish(body)` takes the answer at end(); `refuse(text)` a bad write;
// `report(line)` a progress line; `open()` says whether the job still
// takes writes. `settle()` is for when
// the module has nothing left to do without having called end(): the
// seed's page never asks for end() (its service left the socket open and
// its PHP clients read what came), so what it wrote is the answer, and a
// module that wrote nothing did not answer.
function makeClient(remote, open, finish, refuse, ids, report) {
  const chunks = [];
  const [host, port] = splitRemote(remote);
  const later = (callback) => {
    if (typeof callback === 'function') process.nextTick(callback);
  };
  const client = {
    remoteAddress: host,
    remotePort: port,
    // The queue job's id (null for a direct call or a datagram) and its
    // attempt, 1-based: what BGJOB_JOB_ID and BGJOB_ATTEMPT say.
    jobId: ids.jobId,
    attempt: ids.attempt,
    write(chunk, encoding, callback) {
      if (typeof encoding === 'function') [encoding, callback] = [undefined, encoding];
      if (!open()) return false;
      if (typeof chunk === 'string') {
        if (encoding != null && !Buffer.isEncoding(encoding)) {
          refuse(`wrote with an unknown encoding ${String(encoding)}`);
          return false;
        }
        chunks.push(Buffer.from(chunk, encoding || 'utf8'));
      } else if (chunk instanceof Uint8Array) {
        chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
      } else {
        refuse(`wrote ${described(chunk)}, not a string or Buffer`);
        return false;
      }
      later(callback);
      return true;
    },
    end(chunk, encoding, callback) {
      if (typeof chunk === 'function') [chunk, callback] = [undefined, chunk];
      if (typeof encoding === 'function') [encoding, callback] = [undefined, encoding];
      if (!open()) return client;
      if (chunk !== undefined && chunk !== null && !client.write(chunk, encoding)) return client;
      finish(Buffer.concat(chunks));
      later(callback);
      return client;
    },
    destroy() {
      client.end();
    },
    progress(n, m) {
      if (open()) report(progressLine(n, m));
    },
  };
  const settle = () => {
    if (!open()) return;
    if (chunks.length > 0) finish(Buffer.concat(chunks));
    else refuse('did not call client.end()');
  };
  return { client, settle };
}

// What keeps this process's event loop busy: timers, file system requests,
// child processes, sockets (unref'd timers, as the quiet check's own, do
// not count). `withImmediates` false leaves out setImmediate callbacks, as
// the worker's own next read may be one when a job starts.
function pendingWork(withImmediates) {
  const kinds = process.getActiveResourcesInfo();
  return withImmediates ? kinds.length : kinds.filter((k) => k !== 'Immediate').length;
}

// A warm worker never runs out of things to do (it waits for the next job),
// so "nothing left to do" is: no more pending work than when the job
// started. Checked first once the immediate callbacks the job scheduled
// have run (an immediate that is running does not count), then from an
// unref'd timer, less and less often; `stillOpen()` false stops it.
function whenQuiet(stillOpen, before, settle) {
  if (!stillOpen()) return; // answered already: the usual case costs nothing
  let delay = 0;
  const check = () => {
    if (!stillOpen()) return;
    if (pendingWork(true) <= before) {
      settle();
      return;
    }
    delay = Math.min(delay * 2 + 1, 50);
    setTimeout(check, delay).unref();
  };
  setImmediate(check);
}

function readStdin(done) {
  const chunks = [];
  process.stdin.on('data', (c) => chunks.push(c));
  process.stdin.on('end', () => done(Buffer.concat(chunks)));
  process.stdin.on('error', () => done(Buffer.concat(chunks)));
}

function splitRemote(remote) {
  const i = remote.lastIndexOf(':');
  return i < 0 ? [remote, 0] : [remote.slice(0, i).replace(/^\[|\]$/g, ''), Number(remote.slice(i + 1))];
}

function serveWarm() {
  const name = process.env.BGJOB_MODULE || require('path').basename(file, '.js');
  const send = (bytes) => process.stdout.write(bytes);
  let mod;
  try {
    if (enterWorkdir()) throw new Error('no working folder');
    mod = require(file);
  } catch (e) {
    // Served cold instead, where the error becomes the answer.
    send('cold\n');
    return;
  }
  if (!mod || (typeof mod.TExecute !== 'function' && typeof mod.UExecute !== 'function')) {
    send('cold\n');
    return;
  }
  // Node.js opens stderr on its first use: open it now, so that a job's
  // first console.error() is not pending work of the job (see whenQuiet).
  void process.stderr;
  let buffer = Buffer.alloc(0);
  let current = null;
  const reply = (job, ok, body) => {
    if (current !== job) return;
    current = null;
    const bytes = Buffer.isBuffer(body) ? body : Buffer.from(String(body));
    send(Buffer.concat([Buffer.from(`${ok ? 'ok' : 'fail'} ${bytes.length}\n`), bytes]));
    setImmediate(pump);
  };
  const failed = (job, e) => {
    process.stderr.write(`${e && e.stack || e}\n`);
    reply(job, false, `500: Module ${name} ${failure('failed', e)}`);
  };
  process.on('uncaughtException', (e) => {
    if (current) failed(current, e);
    else {
      process.stderr.write(`${e && e.stack || e}\n`);
      process.exit(1);
    }
  });
  process.on('unhandledRejection', (e) => {
    if (current) failed(current, e);
  });
  process.stdin.on('data', (chunk) => {
    buffer = Buffer.concat([buffer, chunk]);
    pump();
  });
  // The daemon stops an idle worker by closing its stdin.
  process.stdin.on('end', () => process.exit(0));
  send('ready\n');

  function pump() {
    while (!current) {
      const newline = buffer.indexOf(10);
      if (newline < 0) return;
      const header = buffer.subarray(0, newline).toString().split(' ');
      if (header[0] === 'unload') {
        try {
          if (typeof mod.Unload === 'function') mod.Unload();
        } finally {
          process.exit(0);
        }
      }
      const length = Number(header[3]);
      if (buffer.length < newline + 1 + length) return;
      const data = buffer.subarray(newline + 1, newline + 1 + length);
      buffer = buffer.subarray(newline + 1 + length);
      const job = { jobId: header[4] && header[4] !== '-' ? Number(header[4]) : null, attempt: Number(header[5] || 1) };
      run(header[1], header[2] === '-' ? '' : header[2], Buffer.from(data), job);
    }
  }

  function run(transport, remote, data, ids) {
    const job = {};
    current = job;
    const parts = [name, data.toString()];
    try {
      if (transport === 'udp') {
        if (typeof mod.UExecute !== 'function') return reply(job, false, `500: Module ${name} exports no UExecute`);
        Promise.resolve(mod.UExecute(parts)).then(() => reply(job, true, ''), (e) => failed(job, e));
        return;
      }
      if (typeof mod.TExecute !== 'function') return reply(job, false, `500: Module ${name} exports no TExecute`);
      const { client, settle } = makeClient(
        remote,
        () => current === job,
        (body) => reply(job, true, body),
        (text) => reply(job, false, `500: Module ${name} ${text}`),
        ids,
        (line) => send(`progress ${String(line).replace(/\n/g, ' ')}\n`),
      );
      const before = pendingWork(false);
      const result = mod.TExecute(parts, client);
      if (result && typeof result.then === 'function') result.then(null, (e) => failed(job, e));
      whenQuiet(() => current === job, before, settle);
    } catch (e) {
      failed(job, e);
    }
  }
}
