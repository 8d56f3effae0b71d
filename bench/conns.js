// make bench: a node server holding N accepted TCP connections on loopback
// (default 4000), from a client process it starts. Prints "ready PID" when
// all N are accepted. The client exits when the server's pipe to it closes.
'use strict';
const net = require('net');
const { spawn } = require('child_process');

const N = Number(process.argv[2] || 4000);
let accepted = 0;
const held = [];
const server = net.createServer((c) => {
  held.push(c);
  if (++accepted === N) console.log(`ready ${process.pid}`);
});
server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => {
  const client = `
    const net = require('net');
    const socks = [];
    let open = 0;
    function more() {
      // Connect in batches so that the listen queue never overflows.
      for (let i = 0; i < 200 && socks.length < ${N}; i++) {
        const s = net.connect(${server.address().port}, '127.0.0.1', () => {
          if (++open % 200 === 0) more();
        });
        socks.push(s);
      }
    }
    more();
    process.stdin.on('end', () => process.exit(0));
    process.stdin.resume();
  `;
  spawn(process.execPath, ['-e', client], { stdio: ['pipe', 'ignore', 'inherit'] });
});
