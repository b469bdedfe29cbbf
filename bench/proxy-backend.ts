// The app behind the sidecars for `npm run bench:proxy -- --node-backend`: an HTTP/1.1 server and an
// h2c server, each answering every request with the 2-byte body "ok". By default the bench uses a
// native responder instead (an HAProxy instance answering with `http-request return`), which spends
// a fraction of this one's CPU on a 2-core machine; this one is the fallback and a cross-check.
// `node dist/bench/proxy-backend.js HTTP_PORT H2C_PORT`; prints "listening" once both are up.
import http from 'node:http';
import http2 from 'node:http2';

const [httpPort, h2Port] = process.argv.slice(2).map(Number);
const body = Buffer.from('ok');

const h1 = http.createServer({ keepAliveTimeout: 60_000 }, (_req, res) => {
  res.writeHead(200, ['content-type', 'text/plain', 'content-length', '2']);
  res.end(body);
});
const h2 = http2.createServer({}, (_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
  res.end(body);
});

let listening = 0;
for (const [server, port] of [
  [h1, httpPort],
  [h2, h2Port],
] as const) {
  server.listen(port, '127.0.0.1', () => {
    if (++listening === 2) process.stdout.write('listening\n');
  });
}
process.on('SIGTERM', () => process.exit(0));
