// A stand-in for the old Node.js service answering in-process, as its
// test.js module did: the first chunk is the request, the answer is "Test".
// Usage: node oldservice.js PORT
const net = require('net');
const server = net.createServer((client) => {
  client.once('data', () => {
    client.write('Test');
    client.end();
  });
  client.on('error', () => {});
});
server.listen({ port: Number(process.argv[2]), host: '127.0.0.1', backlog: 1024 });
