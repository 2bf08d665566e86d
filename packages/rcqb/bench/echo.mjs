// The echo side of bench/roundtrip.mjs, run as a worker thread or a child
// process: answers every ping with the same value, by one transport.
import net from 'node:net';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Rcqb } from '../dist/index.js';

const cfg = isMainThread ? JSON.parse(process.argv[2]) : workerData;
const port = isMainThread ? process : parentPort;
const ready = () => port.postMessage?.('ready') ?? process.send('ready');

switch (cfg.kind) {
  case 'rcqb': {
    const ping = Rcqb.attach(cfg.ping, { spinNs: cfg.spinNs });
    const pong = Rcqb.attach(cfg.pong, { spinNs: cfg.spinNs });
    ready();
    for (;;) {
      const v = ping.dequeueNumber();
      if (v < 0) break;
      pong.enqueueNumber(v);
    }
    break;
  }
  case 'sab': {
    // Two Int32 cells: [0] ping sequence, [1] pong sequence.
    const cells = new Int32Array(cfg.sab);
    ready();
    let last = 0;
    for (;;) {
      Atomics.wait(cells, 0, last);
      last = Atomics.load(cells, 0);
      if (last < 0) break;
      Atomics.store(cells, 1, last);
      Atomics.notify(cells, 1);
    }
    break;
  }
  case 'port': {
    const onMessage = (m) => {
      if (m === -1) {
        port.off('message', onMessage);
        if (isMainThread) process.disconnect();
        return;
      }
      isMainThread ? process.send(m) : parentPort.postMessage(m);
    };
    port.on('message', onMessage);
    ready();
    break;
  }
  case 'socket': {
    const server = net.createServer((s) => {
      s.setNoDelay(true);
      s.on('data', (d) => s.write(d));
      s.on('end', () => server.close());
    });
    server.listen(cfg.path, ready);
    break;
  }
  default:
    throw new Error(`unknown kind ${cfg.kind}`);
}
if (isMainThread && cfg.kind !== 'port' && cfg.kind !== 'socket') process.disconnect();
