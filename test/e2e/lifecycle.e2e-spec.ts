import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeJpeg } from '../helpers/images.js';
import { freePort, MAIN, runService, spawnService, type SpawnedService } from '../helpers/spawn-service.js';
import { makeTempFolder } from '../helpers/temp-folder.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { expectUpgradeRefused, RecordingClient } from '../helpers/ws-client.js';

/**
 * Resolves once process `pid` has mapped sharp's native library: main.ts installed its
 * signal handlers before importing the app, and Nest has not created it yet.
 */
async function waitUntilLoadingTheApp(pid: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const maps = await readFile(`/proc/${pid}/maps`, 'utf8').catch(() => '');
    if (maps.includes('sharp')) {
      return;
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`process ${pid} did not load the app within ${timeoutMs} ms`);
}


interface StopAnswer {
  status: string;
  clients: number;
  terminated: number;
  durationMs: number;
}

async function post(baseUrl: string, path: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${baseUrl}${path}`, { method: 'POST' });
  return { status: res.status, body: await res.json() };
}

describe('lifecycle of the built service (node dist/main.js)', () => {
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeAll(() => {
    expect(existsSync(MAIN), 'dist/main.js: run `npm run build` first (npm test does)').toBe(true);
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      await cleanup();
    }
  });

  async function startService(extraEnv: Record<string, string> = {}): Promise<{ service: SpawnedService; work: string }> {
    const temp = await makeTempFolder();
    cleanups.push(() => temp.remove());
    const service = await spawnService({ WORK_FOLDER: join(temp.path, 'work'), ...extraEnv });
    cleanups.push(() => service.kill('SIGKILL'));
    return { service, work: join(temp.path, 'work') };
  }

  it('STOP tells 20 clients and finishes as soon as they have closed, well inside the 2 s grace', async () => {
    const { service } = await startService();
    const clients = await Promise.all(
      Array.from({ length: 20 }, () => RecordingClient.connect(`ws://127.0.0.1:${service.port}/ws`, { autoCloseOnDisconnect: true })),
    );
    const began = performance.now();
    const { status, body } = await post(service.baseUrl, '/api/server/stop');
    const wall = performance.now() - began;
    expect(status).toBe(200);
    const answer = body as StopAnswer;
    expect(answer).toMatchObject({ status: 'stopped', clients: 20, terminated: 0 });
    // Ended by the clients closing, not by the 2 s grace running out.
    expect(answer.durationMs).toBeLessThan(1000);
    for (const c of clients) {
      await c.closed;
      expect(c.count('disconnect')).toBe(1);
    }
    process.stdout.write(`[measure] STOP, 20 clients closing at once: ${answer.durationMs} ms in the server, ${Math.round(wall)} ms for the call\n`);
  });

  it('STOP waits the 2 s grace for a client that never closes, then terminates it', async () => {
    const { service } = await startService();
    const polite = await Promise.all(
      Array.from({ length: 5 }, () => RecordingClient.connect(`ws://127.0.0.1:${service.port}/ws`, { autoCloseOnDisconnect: true })),
    );
    const stubborn = await RecordingClient.connect(`ws://127.0.0.1:${service.port}/ws`);
    const { status, body } = await post(service.baseUrl, '/api/server/stop');
    expect(status).toBe(200);
    const answer = body as StopAnswer;
    expect(answer).toMatchObject({ clients: 6, terminated: 1 });
    expect(answer.durationMs).toBeGreaterThanOrEqual(1950);
    expect(answer.durationMs).toBeLessThan(3000);
    await stubborn.closed;
    expect(stubborn.count('disconnect')).toBe(1);
    // Terminated, not closed with a close frame: the client sees an abnormal closure.
    expect(stubborn.closeCode).toBe(1006);
    await Promise.all(polite.map((c) => c.closed));
    process.stdout.write(`[measure] STOP with one client that never closes: ${answer.durationMs} ms\n`);
  });

  it('SIGTERM: clients are told, the process exits 0 and the files stay on disk', async () => {
    const { service, work } = await startService();
    const client = await RecordingClient.connect(`ws://127.0.0.1:${service.port}/ws`, { autoCloseOnDisconnect: true });
    const jpeg = await makeJpeg({ color: { r: 5, g: 6, b: 7 } });
    const put = await fetch(`${service.baseUrl}/api/image?stackSize=3&exposure=90`, { method: 'PUT', headers: { 'Content-Type': 'image/jpeg' }, body: new Uint8Array(jpeg) });
    expect(put.status).toBe(200);
    const began = performance.now();
    const code = await service.kill('SIGTERM');
    const took = performance.now() - began;
    expect(code).toBe(0);
    expect(took).toBeLessThan(3000);
    expect(client.count('disconnect')).toBe(1);
    expect(await readFile(join(work, 'web_image.jpg'))).toEqual(jpeg);
    expect(JSON.parse(await readFile(join(work, 'data.json'), 'utf8'))).toMatchObject({ STACK_SIZE: 3, EXPO: '0:01:30' });
    for (const f of ['index.html', 'favicon.ico', 'openseadragon.min.js', 'icons/home_rest.png']) {
      expect(existsSync(join(work, f)), f).toBe(true);
    }
  });

  it('SIGTERM with a client that never closes: the grace, then exit 0 within 3 s', async () => {
    const { service } = await startService();
    const stubborn = await RecordingClient.connect(`ws://127.0.0.1:${service.port}/ws`);
    const began = performance.now();
    expect(await service.kill('SIGTERM')).toBe(0);
    const took = performance.now() - began;
    expect(took).toBeGreaterThanOrEqual(1900);
    expect(took).toBeLessThan(3000);
    await stubborn.closed;
    expect(stubborn.count('disconnect')).toBe(1);
    process.stdout.write(`[measure] SIGTERM with one client that never closes: exit after ${Math.round(took)} ms\n`);
  });

  it('a signal right after launch, while Nest is still loading, exits 0', async () => {
    const temp = await makeTempFolder();
    cleanups.push(() => temp.remove());
    // While the app's modules load (a loaded machine may take longer than any fixed delay
    // to get there), and once more a little later, while Nest is still starting.
    for (const delayMs of [0, 450]) {
      const run = runService({ PORT: String(await freePort()), WORK_FOLDER: join(temp.path, `work-${delayMs}`) });
      cleanups.push(() => Promise.resolve(run.child.kill('SIGKILL')));
      await waitUntilLoadingTheApp(run.child.pid!);
      await new Promise((r) => setTimeout(r, delayMs));
      run.child.kill('SIGTERM');
      expect(await run.exited, `SIGTERM after ${delayMs} ms`).toBe(0);
    }
  });

  it('SIGINT exits 0 too, even with an idle keep-alive HTTP connection open', async () => {
    const { service } = await startService();
    const { Agent, get } = await import('node:http');
    const agent = new Agent({ keepAlive: true });
    await new Promise<void>((resolve, reject) => {
      get(`${service.baseUrl}/status`, { agent }, (res) => {
        res.resume();
        res.on('end', resolve);
      }).on('error', reject);
    });
    expect(await service.kill('SIGINT')).toBe(0);
    agent.destroy();
  });

  it('SIGTERM during START exits 0', async () => {
    const temp = await makeTempFolder();
    cleanups.push(() => temp.remove());
    const run = runService({ PORT: String(await freePort()), WORK_FOLDER: join(temp.path, 'work') });
    cleanups.push(() => Promise.resolve(run.child.kill('SIGKILL')));
    await new Promise<void>((resolve) => {
      const onData = (d: Buffer): void => {
        if (d.toString().includes('starting: publishing')) {
          run.child.stdout!.off('data', onData);
          resolve();
        }
      };
      run.child.stdout!.on('data', onData);
    });
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
  });

  it('a second instance on a taken port exits 1 with one PortInUseError line naming the port, leaving the first one\'s files alone', async () => {
    const { service, work } = await startService();
    const jpeg = await makeJpeg({ color: { r: 1, g: 2, b: 250 } });
    const put = await fetch(`${service.baseUrl}/api/image?stackSize=5&exposure=50`, { method: 'PUT', headers: { 'Content-Type': 'image/jpeg' }, body: new Uint8Array(jpeg) });
    expect(put.status).toBe(200);
    const dataBefore = await readFile(join(work, 'data.json'), 'utf8');
    // Started by mistake on the same port and the same folder.
    const second = runService({ PORT: String(service.port), WORK_FOLDER: work });
    expect(await second.exited).toBe(1);
    const lines = second.err().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^PortInUseError: Port ${service.port} is already in use`));
    expect(second.err()).not.toMatch(/\n\s+at /);
    // The first one is untouched, on disk too.
    expect((await fetch(`${service.baseUrl}/status`)).status).toBe(200);
    expect(await readFile(join(work, 'web_image.jpg'))).toEqual(jpeg);
    expect(await readFile(join(work, 'data.json'), 'utf8')).toBe(dataBefore);
  });
});

describe('STOP / START in process', () => {
  let server: TestServer;

  afterEach(async () => {
    await server.close();
  });

  it('while stopped: /status 503 "stopped", viewer routes 503, /ws refused with 503, control routes still answer', async () => {
    server = await startTestServer();
    const stop = await post(server.baseUrl, '/api/server/stop');
    expect(stop.status).toBe(200);
    const status = await fetch(`${server.baseUrl}/status`);
    expect(status.status).toBe(503);
    expect(await status.json()).toMatchObject({ status: 'stopped' });
    for (const path of ['/', '/index.html', '/web_image.jpg', '/data.json', '/openseadragon.min.js']) {
      expect((await fetch(`${server.baseUrl}${path}`)).status, path).toBe(503);
    }
    expect(await expectUpgradeRefused(server.wsUrl)).toBe(503);
    // Files stay on disk while stopped.
    expect(existsSync(join(server.webFolder, 'index.html'))).toBe(true);
  });

  it('START after STOP serves again and clients can reconnect, as many times as asked', async () => {
    server = await startTestServer();
    for (let round = 0; round < 3; round++) {
      const client = await RecordingClient.connect(server.wsUrl, { autoCloseOnDisconnect: true });
      expect((await post(server.baseUrl, '/api/server/stop')).status).toBe(200);
      await client.closed;
      expect(client.count('disconnect')).toBe(1);
      const start = await post(server.baseUrl, '/api/server/start');
      expect(start.status).toBe(200);
      expect(start.body).toMatchObject({ status: 'running' });
      expect((await fetch(`${server.baseUrl}/status`)).status).toBe(200);
      expect((await fetch(`${server.baseUrl}/`)).status).toBe(200);
      const again = await RecordingClient.connect(server.wsUrl);
      await server.notifier.publish(await makeJpeg(), { stackSize: round + 1 });
      await again.waitFor((c) => c.count('new_image') === 1);
      again.close();
      await again.closed;
    }
  });

  it('during the grace: viewer routes and /ws already answer 503, a publish lands on disk but sends no new_image', async () => {
    server = await startTestServer({ disconnectGraceMs: 500 });
    const stubborn = await RecordingClient.connect(server.wsUrl);
    const stopping = server.lifecycle.stop();
    await stubborn.waitFor((c) => c.count('disconnect') === 1);
    expect((await fetch(`${server.baseUrl}/web_image.jpg`)).status).toBe(503);
    expect((await fetch(`${server.baseUrl}/status`)).status).toBe(503);
    expect(await expectUpgradeRefused(server.wsUrl)).toBe(503);
    const jpeg = await makeJpeg({ color: { r: 200, g: 100, b: 0 } });
    await server.notifier.publish(jpeg, { stackSize: 9 });
    expect(await readFile(join(server.webFolder, 'web_image.jpg'))).toEqual(jpeg);
    const report = await stopping;
    expect(report.terminated).toBe(1);
    await stubborn.closed;
    // Besides the session's hello, only the disconnect: no new_image during the grace.
    expect(stubborn.messages.filter((m) => (m as { type: string }).type !== 'hello')).toEqual([{ type: 'disconnect' }]);
  });

  it('closing the app (a signal) while publishes are still converting: they land on disk before it ends', async () => {
    server = await startTestServer();
    const { makeTexturedTiff } = await import('../fixtures/sample-images.js');
    const big = makeTexturedTiff({ colour: { r: 0, g: 180, b: 90 }, width: 3000, height: 2000 });
    const publishing = server.notifier.publish(big, { stackSize: 77 });
    const webFolder = server.webFolder;
    const closing = server.app.close();
    await publishing;
    await closing;
    expect(JSON.parse(await readFile(join(webFolder, 'data.json'), 'utf8'))).toMatchObject({ STACK_SIZE: 77 });
    const { default: sharp } = await import('sharp');
    expect((await sharp(await readFile(join(webFolder, 'web_image.jpg'))).metadata()).width).toBe(3000);
  });

  it('STOP twice at once: both answer, one STOP happens, clients get one disconnect', async () => {
    server = await startTestServer();
    const client = await RecordingClient.connect(server.wsUrl, { autoCloseOnDisconnect: true });
    const [a, b] = await Promise.all([post(server.baseUrl, '/api/server/stop'), post(server.baseUrl, '/api/server/stop')]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(server.lifecycle.state).toBe('stopped');
    await client.closed;
    expect(client.count('disconnect')).toBe(1);
  });

  it('START while stopping ends running, after the STOP finished', async () => {
    server = await startTestServer({ disconnectGraceMs: 300 });
    const stubborn = await RecordingClient.connect(server.wsUrl);
    const stopping = server.lifecycle.stop();
    await stubborn.waitFor((c) => c.count('disconnect') === 1);
    expect(server.lifecycle.state).toBe('stopping');
    const starting = server.lifecycle.start();
    const report = await stopping;
    expect(report.terminated).toBe(1);
    await starting;
    expect(server.lifecycle.state).toBe('running');
    await stubborn.closed;
    const fresh = await RecordingClient.connect(server.wsUrl);
    fresh.close();
  });

  it('a publish during STOP is not lost: it lands on disk and is served after START', async () => {
    server = await startTestServer({ disconnectGraceMs: 300 });
    const stubborn = await RecordingClient.connect(server.wsUrl);
    const stopping = server.lifecycle.stop();
    const jpeg = await makeJpeg({ color: { r: 33, g: 66, b: 99 } });
    await server.notifier.publish(jpeg, { stackSize: 42 });
    expect(await readFile(join(server.webFolder, 'web_image.jpg'))).toEqual(jpeg);
    await stopping;
    // Also while fully stopped.
    const later = await makeJpeg({ color: { r: 99, g: 66, b: 33 } });
    const put = await fetch(`${server.baseUrl}/api/image?stackSize=43`, { method: 'PUT', headers: { 'Content-Type': 'image/jpeg' }, body: new Uint8Array(later) });
    expect(put.status).toBe(200);
    await server.lifecycle.start();
    const served = await fetch(`${server.baseUrl}/web_image.jpg`);
    expect(Buffer.from(await served.arrayBuffer())).toEqual(later);
    expect(await (await fetch(`${server.baseUrl}/data.json`)).json()).toMatchObject({ STACK_SIZE: 43 });
    await stubborn.closed;
  });

  it('closing the app during START (a signal while starting) settles stopped without error', async () => {
    server = await startTestServer();
    await server.lifecycle.stop();
    const starting = server.lifecycle.start();
    const closing = server.close();
    await expect(starting).resolves.toBeUndefined();
    await expect(closing).resolves.toBeUndefined();
    expect(server.lifecycle.state).toBe('stopped');
  });
});
