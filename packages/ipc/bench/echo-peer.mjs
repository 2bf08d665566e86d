// The echo side of bench/echo.mjs, run as a child process (or worker thread
// for MessagePort): answers over the channel, a Unix socket and the process
// IPC channel, each with the payload it got.
import net from 'node:net';
import { parentPort, workerData, isMainThread } from 'node:worker_threads';
import { BackDriver } from '../dist/index.js';

if (!isMainThread) {
  parentPort.on('message', (m) => parentPort.postMessage(m));
  parentPort.postMessage('ready');
} else {
  const [endpoint, socketPath] = process.argv.slice(2);
  const back = BackDriver.create(endpoint, { buffers: 32, bufferSize: 2 << 20 });
  // The reply is the payload itself, answered before its view is reused.
  back.serve((req) => ({ status: 0, data: req.payload }), { spinNs: 200_000, payloadViews: true });
  net
    .createServer((s) => {
      // Length-prefixed frames: 4 bytes, then the payload.
      let acc = Buffer.alloc(0);
      s.on('data', (d) => {
        acc = acc.length ? Buffer.concat([acc, d]) : d;
        while (acc.length >= 4 && acc.length >= 4 + acc.readUInt32LE(0)) {
          const n = acc.readUInt32LE(0);
          s.write(acc.subarray(0, 4 + n));
          acc = acc.subarray(4 + n);
        }
      });
    })
    .listen(socketPath, () => process.send('ready'));
  process.on('message', (m) => process.send(m));
  // The bench ended (or died): remove the channel's names with us.
  const end = () => back.close().then(() => process.exit(0));
  process.on('disconnect', end);
  process.on('SIGTERM', end);
  void workerData;
}
