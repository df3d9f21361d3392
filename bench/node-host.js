// The Node.js host's own cost per warm job, without the daemon: starts
// bin/bgjob-node-host.js (or the host file given) as a worker, sends it
// N jobs one after another over its framing and prints the time per job.
//
//   node bench/node-host.js [JOBS]     (default 20000)
//
// The module answers `Test` with client.end(); a second run measures one
// that only writes (the seed's style), answered once it has nothing left
// to do.
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const jobs = Number(process.argv[2] || 20000);
const host = fs.readFileSync(path.join(__dirname, '../bin/bgjob-node-host.js'), 'utf8');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bgjob-node-host-'));
const modules = {
  'end.js': "exports.TExecute = (parts, client) => client.end('Test');",
  'write.js': "exports.TExecute = (parts, client) => { client.write('Test'); };",
};
for (const [name, source] of Object.entries(modules)) fs.writeFileSync(path.join(dir, name), source);

function run(name, count) {
  return new Promise((resolve) => {
    const worker = spawn(process.execPath, ['-e', host, path.join(dir, name), dir, '--worker'], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let buffer = Buffer.alloc(0);
    let done = 0;
    let start = 0;
    const send = () => worker.stdin.write('job tcp - 5\nhello');
    worker.stdout.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const newline = buffer.indexOf(10);
        if (newline < 0) return;
        const header = buffer.subarray(0, newline).toString().split(' ');
        if (header.length === 1) {
          if (header[0] !== 'ready') throw new Error(`worker said ${header[0]}`);
          buffer = buffer.subarray(newline + 1);
          start = performance.now();
          send();
          continue;
        }
        const end = newline + 1 + Number(header[1]);
        if (buffer.length < end) return;
        buffer = buffer.subarray(end);
        if (++done === count) {
          worker.kill();
          resolve(((performance.now() - start) * 1000) / count);
          return;
        }
        send();
      }
    });
  });
}

(async () => {
  const ended = await run('end.js', jobs);
  const written = await run('write.js', Math.max(1, Math.floor(jobs / 20)));
  console.log(`client.end: ${ended.toFixed(1)} us/job; write only: ${written.toFixed(1)} us/job`);
  fs.rmSync(dir, { recursive: true });
})();
