// make bench: a node main thread busy in JavaScript 120 frames deep (ten
// distinct functions, the innermost optimized), for npstack's naming of
// JavaScript frames. It reads the clock in a loop and prints, every 100 ms,
// `gap NS`: the longest time between two reads in that window (how long a
// tool stopped it, plus the loop's own noise).
'use strict';
const fs = require('fs');

const { performance } = require('perf_hooks');

// Milliseconds, as doubles: reading the clock allocates nothing, so the
// loop's own gaps are not the garbage collector's.
let windowStart = performance.now();
let last = windowStart;
let worst = 0;
let said = false;

function spin() {
  for (;;) {
    const now = performance.now();
    if (now - last > worst) worst = now - last;
    last = now;
    if (now - windowStart > 100) {
      if (!said) {
        fs.writeSync(1, `ready ${process.pid}\n`);
        said = true;
      }
      fs.writeSync(1, `gap ${Math.round(worst * 1e6)}\n`);
      windowStart = performance.now();
      last = windowStart;
      worst = 0;
    }
  }
}

function a(n) { return n > 0 ? b(n - 1) + 1 : spin(); }
function b(n) { return n > 0 ? c(n - 1) + 1 : spin(); }
function c(n) { return n > 0 ? d(n - 1) + 1 : spin(); }
function d(n) { return n > 0 ? e(n - 1) + 1 : spin(); }
function e(n) { return n > 0 ? f(n - 1) + 1 : spin(); }
function f(n) { return n > 0 ? g(n - 1) + 1 : spin(); }
function g(n) { return n > 0 ? h(n - 1) + 1 : spin(); }
function h(n) { return n > 0 ? i(n - 1) + 1 : spin(); }
function i(n) { return n > 0 ? j(n - 1) + 1 : spin(); }
function j(n) { return n > 0 ? a(n - 1) + 1 : spin(); }

a(120);
