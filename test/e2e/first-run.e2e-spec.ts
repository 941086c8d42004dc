import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { freePort, MAIN, spawnService, type SpawnedService } from '../helpers/spawn-service.js';
import { makeTempFolder } from '../helpers/temp-folder.js';

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
    const port = await freePort();
    const service = await spawnService({ PORT: String(port), WORK_FOLDER: join(temp.path, 'work') }, STARTUP_MS);
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

  it('LOG_FORMAT=json: every line is JSON, the route map is left out, the URL is there', async () => {
    const temp = await makeTempFolder();
    const port = await freePort();
    const service = await spawnService({ PORT: String(port), WORK_FOLDER: join(temp.path, 'work'), LOG_FORMAT: 'json' }, STARTUP_MS);
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
