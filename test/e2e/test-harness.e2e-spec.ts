import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnService, type SpawnedService } from '../helpers/spawn-service.js';
import { makeTempFolder } from '../helpers/temp-folder.js';

/**
 * The helper every spawned-service test stands on: the process it returns must be the one
 * answering. A port found free and released can be taken by another test's server before
 * the service binds it; that server's 200 was once taken for the service's own.
 */
describe('spawnService: the service under test is provably the one answering', () => {
  const cleanups: (() => Promise<unknown>)[] = [];

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      await cleanup();
    }
  });

  async function work(): Promise<string> {
    const temp = await makeTempFolder();
    cleanups.push(() => temp.remove());
    return temp.path;
  }

  it('a port another server holds (and answers 200 on): the start fails, the other server is never taken for it', async () => {
    let decoyHits = 0;
    const decoy: Server = createServer((_req, res) => {
      decoyHits += 1;
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"status":"running","stackSize":0}');
    });
    await new Promise<void>((resolve) => decoy.listen(0, '0.0.0.0', resolve));
    cleanups.push(() => new Promise((resolve) => decoy.close(resolve)));
    const port = (decoy.address() as AddressInfo).port;

    await expect(spawnService({ PORT: String(port), WORK_FOLDER: await work() })).rejects.toThrow(/exited with 1[\s\S]*port/i);
    expect(decoyHits).toBe(0);
  }, 60_000);

  it('PORT=0 (the default): the kernel picks a free port, read from the service\'s own log; /status there is its own', async () => {
    const started: SpawnedService[] = await Promise.all([work(), work()].map(async (folder) => spawnService({ WORK_FOLDER: await folder })));
    cleanups.push(() => Promise.all(started.map((s) => s.kill('SIGKILL'))));
    expect(started[0].port).not.toBe(started[1].port);
    for (const service of started) {
      expect(service.port).toBeGreaterThan(0);
      const status = (await (await fetch(`${service.baseUrl}/status`)).json()) as { port: number };
      expect(status.port).toBe(service.port);
      expect(service.stdout()).toContain(`listening on 0.0.0.0:${service.port}`);
    }
  }, 90_000);
});
