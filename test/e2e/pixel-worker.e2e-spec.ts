import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PixelWorkers } from '../../src/modules/image-notifier/pixel-workers.service.js';
import { encodeFits } from '../fixtures/fits-writer.mjs';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { RecordingClient } from '../helpers/ws-client.js';

/** A linear 16-bit sky (3 % of full scale, noise, a few stars), grey: what a stacker saves. */
function linearFits(width: number, height: number, seed: number): Buffer {
  const data = new Uint16Array(width * height);
  for (let i = 0; i < data.length; i++) {
    seed = (seed * 16807) % 2147483647;
    const u = seed / 2147483647;
    data[i] = Math.round((u < 0.002 ? 0.7 : 0.03 + (u - 0.5) * 0.01) * 65535);
  }
  return encodeFits({ width, height, channels: 1, bitpix: 16, data });
}

/** PUT /api/image with a FITS body: the answer's status and body, read whole. */
async function put(server: TestServer, body: Buffer): Promise<{ status: number; body: string }> {
  const res = await fetch(`${server.baseUrl}/api/image`, { method: 'PUT', headers: { 'Content-Type': 'image/fits' }, body: new Uint8Array(body) });
  return { status: res.status, body: await res.text() };
}

/** The worker thread PixelWorkers runs now (started by its first task). */
function currentWorker(workers: PixelWorkers): Worker {
  const { worker } = workers as unknown as { worker: Worker | undefined };
  if (!worker) {
    throw new Error('no pixel worker running');
  }
  return worker;
}

/** `workers.run` calls `onPosted` once the task is on the worker, and records when its answer is back. */
function watchTasks(workers: PixelWorkers, events: string[], onPosted: () => void): void {
  const run = workers.run.bind(workers);
  vi.spyOn(workers, 'run').mockImplementation((task, transfer) => {
    const answer = run(task, transfer);
    events.push('task posted');
    onPosted();
    return answer.finally(() => events.push('worker answered'));
  });
}

describe('the pixel worker (FITS decode and stretch off the event loop), in the running service', () => {
  let server: TestServer | undefined;
  let client: RecordingClient | undefined;

  afterEach(async () => {
    vi.restoreAllMocks();
    client?.close();
    await server?.close();
    server = undefined;
    client = undefined;
  });

  it('answers /status and a ws ping while the worker decodes and stretches a 16-bit 3 MP FITS, before that publish is answered', async () => {
    server = await startTestServer();
    // The worker started and warm: what follows is its work on the large image only.
    expect((await put(server, linearFits(64, 48, 5))).status).toBe(200);
    const workers = server.app.get(PixelWorkers);
    const events: string[] = [];
    let posted!: () => void;
    const onWorker = new Promise<void>((resolve) => (posted = resolve));
    watchTasks(workers, events, () => posted());
    client = await RecordingClient.connect(server.wsUrl);
    const ws = client.socket;

    const big = linearFits(2000, 1500, 7);
    const publishing = put(server, big).then((answer) => {
      events.push('publish answered');
      return answer;
    });
    await onWorker;
    const status = await fetch(`${server.baseUrl}/status`);
    events.push(`status answered ${status.status}`);
    await new Promise((resolve) => {
      ws.once('pong', resolve);
      ws.ping();
    });
    events.push('ws pong');

    const answer = await publishing;
    expect(answer.status).toBe(200);
    expect(answer.body).toContain('"published":true');
    expect(events).toEqual(['task posted', 'status answered 200', 'ws pong', 'worker answered', 'publish answered']);
  }, 180_000);

  it('a worker that dies fails only that publish: 500 naming it, the previous image kept, the next publish on a new worker', async () => {
    server = await startTestServer();
    client = await RecordingClient.connect(server.wsUrl);
    expect((await put(server, linearFits(320, 240, 3))).status).toBe(200);
    await client.waitFor((c) => c.count('new_image') === 1, 10_000, 'the first new_image');
    const image = await readFile(join(server.webFolder, 'web_image.jpg'));
    const data = await readFile(join(server.webFolder, 'data.json'), 'utf8');
    const workers = server.app.get(PixelWorkers);
    const first = currentWorker(workers);
    const firstThread = workers.lastThreadId;
    const events: string[] = [];
    // The worker is ended while the task is on it: what a crash (out of memory, a bug) looks like.
    watchTasks(workers, events, () => void first.terminate());

    const res = await put(server, linearFits(2000, 1500, 4));
    expect(res.status).toBe(500);
    expect((JSON.parse(res.body) as { message: string }).message).toMatch(
      /^could not publish the image: the pixel worker exited with code 1 before it finished converting the image; a new one starts with the next image$/,
    );
    expect(events).toEqual(['task posted', 'worker answered']);
    expect(await readFile(join(server.webFolder, 'web_image.jpg'))).toEqual(image);
    expect(await readFile(join(server.webFolder, 'data.json'), 'utf8')).toBe(data);

    vi.restoreAllMocks();
    expect((await put(server, linearFits(320, 240, 5))).status).toBe(200);
    await client.waitFor((c) => c.count('new_image') === 2, 10_000, 'the second new_image');
    expect(workers.lastThreadId).not.toBe(firstThread);
    expect(await readFile(join(server.webFolder, 'web_image.jpg'))).not.toEqual(image);
    // Only the first and third publishes went out.
    expect(client.count('new_image')).toBe(2);
  }, 180_000);

  it('app.close() ends the worker thread', async () => {
    server = await startTestServer();
    expect((await put(server, linearFits(64, 48, 9))).status).toBe(200);
    const worker = currentWorker(server.app.get(PixelWorkers));
    const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
    await server.close();
    server = undefined;
    expect(await exited).toBe(1);
  }, 120_000);
});
