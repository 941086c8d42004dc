// The baseline of the issue: the minimal Node server a reader would write in an
// afternoon. `ws` with its defaults (no permessage-deflate), the broadcast and the
// heartbeat of the ws README, and node:http streaming web_image.jpg from disk.
// Driven over IPC by bench/run.mjs; argv: <workFolder> <jpeg file to preload>.
import { createReadStream } from 'node:fs';
import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { WebSocket, WebSocketServer } from 'ws';

const [folder, preload] = process.argv.slice(2);
const imagePath = join(folder, 'web_image.jpg');
const image = await readFile(preload);
// The last image also kept in memory, for the floor of serving it from Node:
// GET /mem/web_image.jpg answers it with a plain res.end(buffer).
let current = image;
let seq = 0;
let broadcastAt = 0;

const now = () => Number(process.hrtime.bigint() / 1000n) / 1000;

async function writeImage(bytes) {
  const temp = join(folder, `.web_image.jpg.${++seq}.tmp`);
  await writeFile(temp, bytes);
  await rename(temp, imagePath);
  current = bytes;
}

function broadcast() {
  broadcastAt = now();
  const data = JSON.stringify({ type: 'new_image' });
  for (const client of wss.clients) {
    if (client.readyState === WebSocket.OPEN) {
      client.send(data, { binary: false });
    }
  }
}

const server = createServer((req, res) => {
  const path = req.url.split('?')[0];
  if (req.method === 'GET' && path === '/web_image.jpg') {
    stat(imagePath).then(
      (st) => {
        res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': st.size, 'Cache-Control': 'no-cache' });
        createReadStream(imagePath).pipe(res);
      },
      () => res.writeHead(404).end(),
    );
    return;
  }
  if (req.method === 'GET' && path === '/mem/web_image.jpg') {
    res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': current.length, 'Cache-Control': 'no-cache' });
    res.end(current);
    return;
  }
  if (req.method === 'PUT' && path === '/api/image') {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      writeImage(Buffer.concat(chunks)).then(
        () => {
          broadcast();
          res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"published":true}');
        },
        (err) => res.writeHead(500).end(String(err)),
      );
    });
    return;
  }
  res.writeHead(404).end();
});

const wss = new WebSocketServer({ server, path: '/ws' });
wss.on('connection', (ws) => {
  ws.isAlive = true;
  ws.on('error', () => undefined);
  ws.on('pong', () => (ws.isAlive = true));
});
const heartbeat = setInterval(() => {
  for (const ws of wss.clients) {
    if (!ws.isAlive) {
      ws.terminate();
      continue;
    }
    ws.isAlive = false;
    ws.ping();
  }
}, 30_000);
heartbeat.unref();

await writeImage(image);
server.listen(0, '127.0.0.1', () => {
  process.send({ type: 'ready', port: server.address().port });
});

process.on('message', (msg) => {
  const reply = (result) => process.send({ id: msg.id, ok: true, ...result });
  const fail = (err) => process.send({ id: msg.id, ok: false, error: String(err?.stack ?? err) });
  switch (msg.cmd) {
    case 'broadcast': {
      const t0 = now();
      broadcast();
      reply({ t0, tb: broadcastAt });
      break;
    }
    case 'publish': {
      const t0 = now();
      writeImage(image).then(() => {
        broadcast();
        reply({ t0, tb: broadcastAt });
      }, fail);
      break;
    }
    case 'memory':
      // Run with --expose-gc: twice, so objects freed by finalizers go too.
      globalThis.gc?.();
      setImmediate(() => {
        globalThis.gc?.();
        reply({ memory: process.memoryUsage(), clients: wss.clients.size });
      });
      break;
    default:
      fail(`unknown command ${msg.cmd}`);
  }
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
