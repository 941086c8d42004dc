import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, open, rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import type { ImageServerOptions } from '../../src/config/image-server-options.js';
import { makeJpeg } from '../helpers/images.js';
import { freePort, runService } from '../helpers/spawn-service.js';
import { makeTempFolder } from '../helpers/temp-folder.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

const run = promisify(execFile);

/** Mounting a tmpfs needs root (the CI and this machine); elsewhere these tests cannot run. */
const canMount = process.getuid?.() === 0;

/** A real 3 MiB tmpfs: a disk that fills up and can be remounted read-only. */
async function mountTmpfs(): Promise<{ path: string; remove(): Promise<void> }> {
  const temp = await makeTempFolder('stackcast-tmpfs-');
  await run('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', temp.path]);
  return {
    path: temp.path,
    async remove() {
      await unmount(temp.path);
      await temp.remove();
    },
  };
}

/**
 * A file closed by libuv's pool just as the app's close resolved can hold the mount for a
 * moment ("target is busy", no process left holding it): try again for up to 5 s.
 */
async function unmount(path: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await run('umount', [path]);
      return;
    } catch (err) {
      if (attempt >= 50 || !String((err as { stderr?: string }).stderr).includes('busy')) {
        throw err;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Fills the filesystem of `folder` to the last block; returns the filler's path. */
async function fill(folder: string): Promise<string> {
  const path = join(folder, 'filler');
  const file = await open(path, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) {
      await file.write(chunk);
    }
  } catch (err) {
    expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
  } finally {
    await file.close();
  }
  expect((await statfs(folder)).bavail).toBe(0);
  return path;
}

async function put(baseUrl: string, jpeg: Buffer, stackSize: number): Promise<{ status: number; message: string }> {
  const res = await fetch(`${baseUrl}/api/image?stackSize=${stackSize}`, { method: 'PUT', headers: { 'Content-Type': 'image/jpeg' }, body: new Uint8Array(jpeg) });
  const body = (await res.json()) as { message?: string };
  return { status: res.status, message: body.message ?? '' };
}

async function servedImage(baseUrl: string): Promise<Buffer> {
  return Buffer.from(await (await fetch(`${baseUrl}/web_image.jpg`)).arrayBuffer());
}

async function storage(baseUrl: string): Promise<string> {
  return ((await (await fetch(`${baseUrl}/status`)).json()) as { storage: string }).storage;
}

describe.skipIf(!canMount)('storage failures (a real tmpfs)', () => {
  let server: TestServer | undefined;
  let disk: { path: string; remove(): Promise<void> } | undefined;
  const errors: string[] = [];

  afterEach(async () => {
    await server?.close();
    server = undefined;
    if (disk) {
      await run('mount', ['-o', 'remount,rw', disk.path]).catch(() => undefined);
      await disk.remove();
      disk = undefined;
    }
    errors.length = 0;
  });

  async function start(options: Partial<ImageServerOptions> = {}): Promise<TestServer> {
    disk = await mountTmpfs();
    server = await startTestServer({ workFolder: join(disk.path, 'work'), ...options });
    server.app.useLogger({ log: () => undefined, warn: () => undefined, debug: () => undefined, verbose: () => undefined, error: (m: unknown) => errors.push(String(m)) });
    return server;
  }

  it('disk full: 507 naming it, one log line, the previous image still served, publishing again once space is freed', async () => {
    const { baseUrl } = await start();
    const first = await makeJpeg({ color: { r: 10, g: 200, b: 10 } });
    expect((await put(baseUrl, first, 1)).status).toBe(200);
    const filler = await fill(disk!.path);
    // Noise: too big for what the publish frees by itself (the image kept from before).
    const big = await sharp({ create: { width: 900, height: 700, channels: 3, background: { r: 0, g: 0, b: 0 }, noise: { type: 'gaussian', mean: 128, sigma: 60 } } }).jpeg({ quality: 95 }).toBuffer();
    expect(big.length).toBeGreaterThan(400_000);

    for (const n of [2, 3]) {
      const refused = await put(baseUrl, big, n);
      expect(refused.status).toBe(507);
      expect(refused.message).toMatch(/disk of the folder .* is full .*the previous image is still served/);
    }
    expect(errors.filter((line) => line.includes('is full'))).toHaveLength(1);
    expect((await servedImage(baseUrl)).equals(first)).toBe(true);
    expect(await storage(baseUrl)).toBe('full');

    await rm(filler);
    expect((await put(baseUrl, big, 4)).status).toBe(200);
    expect((await servedImage(baseUrl)).equals(big)).toBe(true);
    expect(await storage(baseUrl)).toBe('ok');
  });

  it('a disk filled by old versions recovers by itself: they go, the publish is tried once more and lands', async () => {
    // Eight versions kept and no history: on 3 MiB, a few noisy images fill the disk with versions.
    const { baseUrl } = await start({ keepVersions: 8, historyBudgetMb: 0 });
    const statuses: number[] = [];
    for (let n = 1; n <= 8; n++) {
      const noisy = await sharp({ create: { width: 700, height: 500, channels: 3, background: { r: n * 20, g: 90, b: 40 }, noise: { type: 'gaussian', mean: 128, sigma: 50 } } })
        .jpeg({ quality: 90 })
        .toBuffer();
      statuses.push((await put(baseUrl, noisy, n)).status);
      expect((await servedImage(baseUrl)).equals(noisy), `publish ${n}`).toBe(true);
    }
    expect(statuses).toEqual(Array(8).fill(200));
    expect(await storage(baseUrl)).toBe('ok');
  });

  it('read-only folder: 503 naming it, the previous image still served, publishing again once writable', async () => {
    const { baseUrl } = await start();
    const first = await makeJpeg({ color: { r: 10, g: 10, b: 200 } });
    expect((await put(baseUrl, first, 1)).status).toBe(200);
    await run('mount', ['-o', 'remount,ro', disk!.path]);

    const refused = await put(baseUrl, await makeJpeg(), 2);
    expect(refused.status).toBe(503);
    expect(refused.message).toMatch(/read-only or not writable/);
    expect(errors.some((line) => line.includes('read-only'))).toBe(true);
    expect((await servedImage(baseUrl)).equals(first)).toBe(true);
    expect(await storage(baseUrl)).toBe('read-only');

    await run('mount', ['-o', 'remount,rw', disk!.path]);
    expect((await put(baseUrl, await makeJpeg(), 3)).status).toBe(200);
    expect(await storage(baseUrl)).toBe('ok');
  });

  it('a full disk at START: one clear line, exit 1, no stack trace', async () => {
    disk = await mountTmpfs();
    await mkdir(join(disk.path, 'work'));
    await fill(disk.path);
    const service = runService({ PORT: String(await freePort()), WORK_FOLDER: join(disk.path, 'work') });
    expect(await service.exited).toBe(1);
    const lines = service.err().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^WebFolderError: The disk of the folder .* is full/);
    expect(service.err() + service.out()).not.toMatch(/\n\s+at /);
  });
});

describe('a deleted web folder', () => {
  let server: TestServer | undefined;

  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('/status says so; the next publish recreates it with the viewer files, so new visitors get the viewer', async () => {
    const temp = await makeTempFolder();
    server = await startTestServer({ workFolder: join(temp.path, 'work') });
    const { baseUrl, webFolder } = server;
    expect(await storage(baseUrl)).toBe('ok');
    await rm(webFolder, { recursive: true, force: true });
    expect(await storage(baseUrl)).toBe('missing');
    expect((await fetch(`${baseUrl}/`)).status).toBe(404);

    const jpeg = await makeJpeg();
    expect((await put(baseUrl, jpeg, 1)).status).toBe(200);
    expect(existsSync(join(webFolder, 'web_image.jpg'))).toBe(true);
    expect(existsSync(join(webFolder, 'openseadragon.min.js'))).toBe(true);
    const viewer = await fetch(`${baseUrl}/`);
    expect(viewer.status).toBe(200);
    expect(await viewer.text()).toContain('<html');
    expect(await storage(baseUrl)).toBe('ok');
    await temp.remove();
  });
});
