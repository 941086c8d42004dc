import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { encodeFits } from '../fixtures/fits-writer.mjs';
import { makeJpeg } from '../helpers/images.js';
import { freePort, MAIN, runService, spawnService, type SpawnedService } from '../helpers/spawn-service.js';
import { makeTempFolder } from '../helpers/temp-folder.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

/** Resolves once the service's stdout satisfies `done` (checked on each chunk), or rejects after `timeoutMs`. */
function outputWhere(service: SpawnedService, done: (stdout: string) => boolean, timeoutMs = 10_000): Promise<string> {
  const stream = service.child.stdout;
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (done(service.stdout())) {
        clearTimeout(timer);
        stream?.off('data', check);
        resolve(service.stdout());
      }
    };
    const timer = setTimeout(() => {
      stream?.off('data', check);
      reject(new Error(`stdout did not show what was awaited within ${timeoutMs} ms:\n${service.stdout()}`));
    }, timeoutMs);
    stream?.on('data', check);
    setImmediate(check);
  });
}

/** Starting Nest takes seconds on a busy machine; the waits end as soon as it answers. */
const STARTUP_MS = 60_000;

/** Nest's route map and module-loading lines, which belong at debug level. */
const STARTUP_CHATTER = /RoutesResolver|RouterExplorer|WebSocketsController|InstanceLoader|Mapped \{/;

describe('a first run, as a new user sees it (node dist/main.js)', { timeout: 90_000 }, () => {
  beforeAll(() => {
    expect(existsSync(MAIN), 'dist/main.js: run `npm run build` first (npm test does)').toBe(true);
  });

  it('the URL and the QR code are the last thing START prints; no route map above them', async () => {
    const temp = await makeTempFolder();
    const service = await spawnService({ WORK_FOLDER: join(temp.path, 'work') }, STARTUP_MS);
    const { port } = service;
    try {
      const out = await outputWhere(service, (s) => s.includes('Scan to watch on a phone'));
      expect(out).not.toMatch(STARTUP_CHATTER);
      const lines = out.trimEnd().split('\n');
      const scan = lines.findIndex((line) => line.startsWith('Scan to watch on a phone: '));
      expect(lines[scan]).toMatch(new RegExp(`:${port}$`));
      // The line just above is the URL, everything below it is the QR code.
      expect(lines[scan - 2]).toContain(`stackcast is live at `);
      expect(lines.slice(scan + 1).filter((l) => l !== '').every((l) => /^[█▀▄ ]+$/.test(l))).toBe(true);
      expect(lines.length - scan).toBeGreaterThan(10);
      expect(scan).toBeLessThan(10);
    } finally {
      await service.kill();
      await temp.remove();
    }
  });

  it('WORK_FOLDER under /proc: exit 1 at once with one line naming the folder (no endless mkdir)', async () => {
    const temp = await makeTempFolder();
    const work = `/proc/stackcast-first-run-${process.pid}/work`;
    const run = runService({ PORT: String(await freePort()), WORK_FOLDER: work }, temp.path);
    const code = await run.exited;
    await temp.remove();
    expect(code).toBe(1);
    const lines = run.err().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^WebFolderError: /);
    expect(lines[0]).toContain(work);
    expect(lines[0]).toContain('takes no new folders');
  });

  it('a misspelled setting is named with the one meant, one warning line each, its value never printed', async () => {
    const temp = await makeTempFolder();
    const secret = 'my-secret-control-token-4242';
    const service = await spawnService(
      { WORK_FOLDER: join(temp.path, 'work'), CONTROLTOKEN: secret, TLS_SELFSIGNED: 'true' },
      STARTUP_MS,
    );
    try {
      const out = await outputWhere(service, (s) => s.includes('stackcast is live at'));
      const warnings = out.split('\n').filter((line) => line.includes('is not a stackcast setting'));
      expect(warnings).toHaveLength(2);
      expect(warnings[0]).toMatch(/WARN.*CONTROLTOKEN is not a stackcast setting and is ignored: did you mean CONTROL_TOKEN\?$/);
      expect(warnings[1]).toMatch(/WARN.*TLS_SELFSIGNED is not a stackcast setting and is ignored: did you mean TLS_SELF_SIGNED\?$/);
      expect(out + service.stderr()).not.toContain(secret);
    } finally {
      await service.kill();
      await temp.remove();
    }
  });

  it('LOG_FORMAT=json: every line is JSON, the route map is left out, the URL is there', async () => {
    const temp = await makeTempFolder();
    const service = await spawnService({ WORK_FOLDER: join(temp.path, 'work'), LOG_FORMAT: 'json' }, STARTUP_MS);
    try {
      const out = await outputWhere(service, (s) => s.includes('stackcast is live at'));
      const entries = out.trim().split('\n').map((line) => JSON.parse(line) as { context?: string; message?: string });
      expect(entries.some((e) => String(e.message).startsWith('stackcast is live at'))).toBe(true);
      expect(entries.filter((e) => STARTUP_CHATTER.test(String(e.context)))).toEqual([]);
    } finally {
      await service.kill();
      await temp.remove();
    }
  });
});

describe('PUT /api/image, as a new user\'s first script sends it', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.close();
  });

  function put(body: Buffer, type: string): Promise<Response> {
    return fetch(`${server.baseUrl}/api/image`, { method: 'PUT', headers: { 'Content-Type': type }, body: new Uint8Array(body) });
  }

  it('image/jpg (a common misspelling of image/jpeg) is taken as image/jpeg', async () => {
    const jpeg = await makeJpeg();
    const res = await put(jpeg, 'image/jpg');
    expect(res.status).toBe(200);
    expect(await readFile(join(server.webFolder, 'web_image.jpg'))).toEqual(jpeg);
  });

  it('a body of another format than its Content-Type is named in plain words', async () => {
    const res = await put(await makeJpeg(), 'image/png');
    expect(res.status).toBe(415);
    const { message } = (await res.json()) as { message: string };
    expect(message).toBe('Content-Type is image/png but the body is a JPEG image');
  });

  it('a gzip-compressed FITS (.fits.gz) is refused naming gzip, not as an unknown signature', async () => {
    const fits = encodeFits({ width: 8, height: 8, channels: 1, bitpix: 16, data: new Uint16Array(64).fill(1000) });
    const before = await readFile(join(server.webFolder, 'web_image.jpg'));
    const res = await put(gzipSync(fits), 'image/fits');
    expect(res.status).toBe(415);
    const { message } = (await res.json()) as { message: string };
    expect(message).toMatch(/gzip-compressed/);
    expect(message).toMatch(/decompress it first/);
    expect(message).not.toMatch(/unknown file signature/);
    expect(await readFile(join(server.webFolder, 'web_image.jpg'))).toEqual(before);
  });
});

describe('npm run demo, then npm start', () => {
  it('the demo galaxy is not resumed as the live session; a live session still is', async () => {
    const temp = await makeTempFolder();
    const work = join(temp.path, 'work');
    const readData = async (): Promise<{ STACK_SIZE: number; UPDATED: string | null }> =>
      JSON.parse(await readFile(join(work, 'data.json'), 'utf8')) as { STACK_SIZE: number; UPDATED: string | null };
    try {
      const demo = await startTestServer({ workFolder: work, demo: true, demoIntervalMs: 3_600_000 });
      await vi.waitFor(async () => expect((await readData()).STACK_SIZE).toBe(1), { timeout: 15_000 });
      await demo.close();

      const live = await startTestServer({ workFolder: work });
      const status = (await (await fetch(`${live.baseUrl}/status`)).json()) as { stackSize: number };
      expect(status.stackSize).toBe(0);
      expect(await readData()).toMatchObject({ STACK_SIZE: 0, UPDATED: null });
      const jpeg = await makeJpeg();
      await live.notifier.publish(jpeg, { stackSize: 5 });
      await live.close();

      const again = await startTestServer({ workFolder: work });
      expect(await readData()).toMatchObject({ STACK_SIZE: 5 });
      expect(await readFile(join(work, 'web_image.jpg'))).toEqual(jpeg);
      await again.close();
    } finally {
      await temp.remove();
    }
  });
});
