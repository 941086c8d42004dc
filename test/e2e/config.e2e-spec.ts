import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { freePort, MAIN, runService, spawnService } from '../helpers/spawn-service.js';
import { makeTempFolder } from '../helpers/temp-folder.js';

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '0.0.0.0', () => srv.close(() => resolve(true)));
  });
}

describe('invalid configuration (the built service)', () => {
  beforeAll(() => {
    expect(existsSync(MAIN), 'dist/main.js: run `npm run build` first (npm test does)').toBe(true);
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '80'],
    ['PORT', '70000'],
    ['WEB_DEDICATED', 'maybe'],
    ['DISPLAYED_ADDRESS', 'eth0'],
    ['PUBLIC_URL', 'not a url'],
    ['MAX_IMAGE_BYTES', 'lots'],
    ['WORK_FOLDER', '/etc/hostname'],
    ['PUBLIC_URL', 'ftp://sky.example.org'],
    ['DISPLAYED_ADDRESS', 'ip:300.1.1.1'],
  ])('%s=%s: exit 1, one line naming it, nothing written, nothing bound', async (name, value) => {
    const temp = await makeTempFolder();
    const port = await freePort();
    const work = join(temp.path, 'work');
    const env: Record<string, string> = { PORT: String(port), WORK_FOLDER: work, [name]: value };
    const run = runService(env, temp.path);
    expect(await run.exited).toBe(1);
    const lines = run.err().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^${name}=${JSON.stringify(value).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is invalid: expected `));
    expect(run.out()).toBe('');
    expect(existsSync(work)).toBe(false);
    if (name !== 'PORT') {
      expect(await portIsFree(port)).toBe(true);
    }
    await temp.remove();
  });

  it('WEB_DEDICATED=true without WEB_FOLDER: exit 1 naming WEB_FOLDER', async () => {
    const temp = await makeTempFolder();
    const run = runService({ PORT: String(await freePort()), WORK_FOLDER: join(temp.path, 'work'), WEB_DEDICATED: 'true' }, temp.path);
    expect(await run.exited).toBe(1);
    expect(run.err()).toMatch(/^WEB_FOLDER=\(unset\) is invalid/);
    await temp.remove();
  });

  it('several bad settings: one line each', async () => {
    const temp = await makeTempFolder();
    const run = runService({ PORT: 'x', CONTROL_TOKEN: 'y', DISPLAYED_ADDRESS: 'z', WORK_FOLDER: join(temp.path, 'work') }, temp.path);
    expect(await run.exited).toBe(1);
    const names = run.err().trim().split('\n').map((l) => l.split(/[= ]/)[0]).sort();
    expect(names).toEqual(['CONTROL_TOKEN', 'DISPLAYED_ADDRESS', 'PORT']);
    await temp.remove();
  });

  it('settings of every module reach the service (DEMO, DEMO_INTERVAL_MS, JPEG_QUALITY)', async () => {
    const temp = await makeTempFolder();
    const service = await spawnService({
      WORK_FOLDER: join(temp.path, 'work'),
      DEMO: 'true',
      DEMO_INTERVAL_MS: '200',
      JPEG_QUALITY: '80',
    });
    try {
      const deadline = Date.now() + 15_000;
      let status: { source?: string; imagesPublished?: number } = {};
      while (Date.now() < deadline) {
        status = (await (await fetch(`${service.baseUrl}/status`)).json()) as typeof status;
        if ((status.imagesPublished ?? 0) >= 2) {
          break;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(status.source).toBe('demo');
      expect(status.imagesPublished).toBeGreaterThanOrEqual(2);
    } finally {
      expect(await service.kill('SIGTERM')).toBe(0);
      await temp.remove();
    }
  });

  it('settings come from a .env file too, and the environment wins over it', async () => {
    const temp = await makeTempFolder();
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(temp.path, '.env'), 'CONTROL_TOKEN=short\nPORT=abc\n');
    const run = runService({ PORT: String(await freePort()), WORK_FOLDER: join(temp.path, 'work') }, temp.path);
    expect(await run.exited).toBe(1);
    expect(run.err().trim()).toMatch(/^CONTROL_TOKEN \(5 characters\) is invalid/);
    expect(run.err()).not.toContain('PORT');
    await temp.remove();
  });
});
