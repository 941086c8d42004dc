// stackcast embedded in a Nest app, as another Nest service would host it, so the bench
// can call ImageNotifier.publish (and the bare broadcast) in process. Driven over IPC by
// bench/run.mjs; argv: <built output folder> <workFolder> <jpeg file to preload>.
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';
import { pathToFileURL } from 'node:url';

const [dist, workFolder, preload] = process.argv.slice(2);
const load = (file) => import(pathToFileURL(join(dist, file)).href);
const { ImageServerModule, ImageNotifier, ServerLifecycle, ViewerWsAdapter } = await load('index.js');
// Not part of the public API; the same module instance as the one index.js loaded.
const { BroadcastService } = await load('gateway/broadcast.service.js');

const image = await readFile(preload);
const now = () => Number(process.hrtime.bigint() / 1000n) / 1000;

const app = await NestFactory.create(
  ImageServerModule.forRoot({
    port: 0,
    host: '127.0.0.1',
    workFolder,
    printQrCode: false,
    // Binds its own port, as the standalone app does (embedded default: the host's app.listen()).
    listen: true,
    // Raised on purpose: thousands of bench viewers from 3 addresses.
    maxViewers: 100_000,
    maxViewersPerAddress: 100_000,
    maxConnections: 100_000,
    maxConnectionsPerAddress: 100_000,
    upgradeBurst: 100_000,
    // bench/run.mjs --pi: the option an embedding host would set (SHARP_CONCURRENCY for main.js).
    ...(process.env.SHARP_CONCURRENCY ? { sharpConcurrency: Number(process.env.SHARP_CONCURRENCY) } : {}),
    upgradesPerSecond: 100_000,
  }),
  { logger: ['error', 'warn'], forceCloseConnections: true },
);
app.useWebSocketAdapter(new ViewerWsAdapter(app));
await app.init();

const notifier = app.get(ImageNotifier);
const broadcaster = app.get(BroadcastService);
// Record when the broadcast itself begins, to split a publish into its parts.
let broadcastAt = 0;
const original = broadcaster.broadcast.bind(broadcaster);
broadcaster.broadcast = (message) => {
  broadcastAt = now();
  return original(message);
};
// And when the image check (ImageConverter) is done, where that service exists: an
// internal of the module, so the bench does without it when it moves.
let checkedAt = NaN;
try {
  const { ImageConverter } = await load('modules/image-notifier/image-converter.service.js');
  const converter = app.get(ImageConverter);
  const toPublishable = converter.toPublishable.bind(converter);
  converter.toPublishable = async (input, options) => {
    const result = await toPublishable(input, options);
    checkedAt = now();
    return result;
  };
} catch {
  // no converter in this build: the row is left out
}

process.send({ type: 'ready', port: app.get(ServerLifecycle).port });

process.on('message', (msg) => {
  const reply = (result) => process.send({ id: msg.id, ok: true, ...result });
  const fail = (err) => process.send({ id: msg.id, ok: false, error: String(err?.stack ?? err) });
  switch (msg.cmd) {
    case 'broadcast': {
      const t0 = now();
      broadcaster.broadcast({ type: 'new_image' });
      reply({ t0, tb: broadcastAt });
      break;
    }
    case 'publish': {
      // The default check: every block of the JPEG decoded before it is written.
      const t0 = now();
      checkedAt = NaN;
      notifier.publish(image).then(() => reply({ t0, tb: broadcastAt, tc: checkedAt }), fail);
      break;
    }
    case 'publish-header': {
      // `verify: 'header'`, for a buffer the caller encoded in memory.
      const t0 = now();
      checkedAt = NaN;
      notifier.publish(image, {}, { verify: 'header' }).then(() => reply({ t0, tb: broadcastAt, tc: checkedAt }), fail);
      break;
    }
    case 'memory':
      // Run with --expose-gc: twice, so objects freed by finalizers go too.
      globalThis.gc?.();
      setImmediate(() => {
        globalThis.gc?.();
        reply({ memory: process.memoryUsage(), clients: broadcaster.count });
      });
      break;
    case 'snapshot':
      // bench/sessions-memory.mjs --snapshot: what the viewers retain, for DevTools.
      globalThis.gc?.();
      reply({ file: writeHeapSnapshot(msg.file) });
      break;
    default:
      fail(`unknown command ${msg.cmd}`);
  }
});

let closing = false;
const shutdown = () => {
  if (closing) {
    return;
  }
  closing = true;
  const force = setTimeout(() => process.exit(0), 3000);
  force.unref();
  app.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('disconnect', shutdown);
process.on('SIGTERM', shutdown);
