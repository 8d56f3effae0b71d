// The nptools demo server: a small HTTP server on loopback that sets an
// environment variable at run time (which only npenv's default, current
// view shows) and keeps a few connections to itself open. GET /spin makes
// its event loop run JavaScript until the process ends, for npstack to name.
'use strict';
const http = require('http');

process.env.DEMO_STARTED_AT = new Date().toISOString();

function checksum(data, rounds) {
  let sum = 0;
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < data.length; i++) {
      sum = (sum * 31 + data[i]) >>> 0;
    }
  }
  return sum;
}

function buildReport(url) {
  const data = Buffer.from(url.repeat(64));
  for (;;) {
    checksum(data, 1000);
  }
}

const server = http.createServer((req, res) => {
  if (req.url === '/spin') {
    buildReport(req.url);
  }
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
