// A tiny HTTP server run as a child process: answers "<greeting>, <path>" and prints its port once listening.
const http = require('node:http');

const greeting = process.argv[2] ?? 'hello';
const server = http.createServer((req, res) => {
  res.end(`${greeting}, ${decodeURIComponent(req.url.slice(1)) || 'world'}`);
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
