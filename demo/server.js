// The nptools demo server: a small HTTP server on loopback that sets an
// environment variable at run time (which only npenv's default, current
// view shows) and keeps a few connections to itself open.
'use strict';
const http = require('http');

process.env.DEMO_STARTED_AT = new Date().toISOString();

const server = http.createServer((req, res) => {
  res.setHeader('content-type', 'text/plain');
  res.end(`hello from ${process.pid}\n`);
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  let pending = 4;
  for (let i = 0; i < 4; i++) {
    http.get({ host: '127.0.0.1', port, agent }, (res) => {
      res.resume();
      res.on('end', () => {
        if (--pending === 0) console.log(`ready ${process.pid} ${port}`);
      });
    });
  }
});
