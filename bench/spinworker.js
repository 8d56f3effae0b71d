// Preloaded (node -r) by make bench's npgcore block: a worker_thread that
// spins on performance.now() and records the longest gap between two
// reads, i.e. the longest time the process was held. SIGUSR2 makes the
// main thread print "gap N" (microseconds) on stdout and reset the record.
'use strict';
const { Worker, isMainThread } = require('worker_threads');

// A worker inherits the main thread's execArgv, this -r included: only the
// main thread starts the spinner, or each worker would start another.
if (!isMainThread) return;

const shared = new SharedArrayBuffer(16);
const gap = new Float64Array(shared, 0, 1);
const reset = new Int32Array(shared, 8, 1);
const worker = new Worker(`
  const { workerData } = require('worker_threads');
  const { performance } = require('perf_hooks');
  const gap = new Float64Array(workerData, 0, 1);
  const reset = new Int32Array(workerData, 8, 1);
  let last = performance.now();
  for (;;) {
    const t = performance.now();
    if (t - last > gap[0]) gap[0] = t - last;
    last = t;
    if (Atomics.load(reset, 0) === 1) {
      gap[0] = 0;
      Atomics.store(reset, 0, 0);
      last = performance.now();
    }
  }`, { eval: true, workerData: shared });
worker.unref();
process.on('SIGUSR2', () => {
  process.stdout.write(`gap ${Math.round(gap[0] * 1000)}\n`);
  Atomics.store(reset, 0, 1);
});
