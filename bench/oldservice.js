// A stand-in for the old Node.js service (the seed's service.js is not
// published): like it, it takes the first TCP chunk as the whole request,
// answers `helo`/`hello` itself, and runs `<module>.js` from MODULES in
// process, loaded once, through its TExecute(parts, client).
// Usage: node oldservice.js PORT [MODULES]
const net = require('net');
const path = require('path');
const dir = path.resolve(process.argv[3] || path.join(__dirname, '..', 'modules'));
const loaded = {};
const server = net.createServer((client) => {
  client.on('error', () => {});
  client.once('data', (chunk) => {
    const request = chunk.toString();
    const colon = request.indexOf(':');
    const head = colon < 0 ? request : request.slice(0, colon);
    const data = colon < 0 ? '' : request.slice(colon + 1);
    const greeting = { helo: 'oleh', hello: 'olleh' }[request.trim()];
    if (greeting) {
      client.end(greeting);
      return;
    }
    const name = head.replace(/[^a-zA-Z0-9_-]/g, '');
    try {
      loaded[name] = loaded[name] || require(path.join(dir, name + '.js'));
      loaded[name].TExecute([name, data], client);
    } catch (e) {
      client.end('500: ' + e.message);
    }
  });
});
server.listen({ port: Number(process.argv[2]), host: '127.0.0.1', backlog: 1024 });
