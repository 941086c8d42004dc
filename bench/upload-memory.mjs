#!/usr/bin/env node
// Why uploads are read into warm memory (UploadMemory): a plain node:http server takes a
// 24 MB PUT over loopback into fresh memory (a new buffer per upload, as before), into memory
// touched beforehand (one buffer, its pages already mapped), and without keeping the bytes.
// Prints the server-side read time of each PUT and the median per mode.
//
//   node bench/upload-memory.mjs [--mb 24] [--puts 9]
import { fork } from 'node:child_process';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { option } from './lib/cli.mjs';
import { publish } from './lib/field-phones.mjs';
import { median } from './lib/stats.mjs';

const MODES = { none: 'bytes not kept', fresh: 'fresh memory per upload', warm: 'memory touched beforehand' };

if (process.argv[2] === 'serve') {
  const mode = process.argv[3];
  let warm;
  const server = createServer((req, res) => {
    const length = Number(req.headers['content-length']);
    const began = performance.now();
    const body = mode === 'warm' ? (warm ??= Buffer.alloc(length)) : mode === 'fresh' ? Buffer.allocUnsafeSlow(length) : undefined;
    let received = 0;
    req.on('data', (chunk) => {
      body && chunk.copy(body, received);
      received += chunk.length;
    });
    req.on('end', () => res.end(String(performance.now() - began)));
  });
  server.listen(0, '127.0.0.1', () => process.send(server.address().port));
} else {
  const bytes = Number(option('--mb') ?? 24) * 1e6;
  const puts = Number(option('--puts') ?? 9);
  const body = Buffer.alloc(bytes, 1);
  for (const [mode, label] of Object.entries(MODES)) {
    const child = fork(fileURLToPath(import.meta.url), ['serve', mode]);
    const port = await new Promise((resolve) => child.once('message', resolve));
    const times = [];
    for (let i = 0; i < puts; i++) {
      // The plain server answers its read time as the body.
      times.push(Number(await publish(port, body, '/', 'application/octet-stream')));
    }
    child.kill();
    console.log(`${label.padEnd(28)} median ${median(times).toFixed(1)} ms  (${times.map((t) => t.toFixed(0)).join(' ')})`);
  }
}
