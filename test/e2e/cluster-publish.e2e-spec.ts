import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PublishOptions } from '../../src/modules/image-notifier/image-notifier.service.js';
import { makeTexturedJpeg } from '../fixtures/sample-images.js';
import { startRedisServer, type RedisTestServer } from '../helpers/redis-server.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

/** With Redis, an image is checked as fully as without before anything is stored. */
describe('the publish path with REDIS_URL (in-process replica, real redis-server)', { timeout: 120_000 }, () => {
  let redis: RedisTestServer;
  let server: TestServer;
  const namespace = 'publish-path';

  beforeAll(async () => {
    redis = await startRedisServer();
    server = await startTestServer({ redisUrl: redis.url, redisNamespace: namespace });
    // The replica reaches Redis a moment after START.
    const deadline = Date.now() + 30_000;
    while (((await (await fetch(`${server.baseUrl}/status`)).json()) as { cluster?: { redis: string } }).cluster?.redis !== 'up') {
      if (Date.now() > deadline) {
        throw new Error('the replica did not reach Redis within 30 s');
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  });

  afterAll(async () => {
    await server?.close();
    await redis?.stop();
  });

  async function latest(): Promise<string | null> {
    const client = createClient({ url: redis.url });
    await client.connect();
    try {
      return await client.get(`${namespace}:latest`);
    } finally {
      client.destroy();
    }
  }

  it('a damaged JPEG is refused (422 over HTTP) and never stored in Redis, even with the removed verify: "header"', async () => {
    const good = await makeTexturedJpeg({ colour: { r: 180, g: 40, b: 40 } });
    await server.notifier.publish(good, { stackSize: 4 });
    const stored = await latest();
    expect(stored).not.toBeNull();

    const jpeg = await makeTexturedJpeg({ colour: { r: 20, g: 150, b: 160 } });
    const damaged = Buffer.concat([jpeg.subarray(0, jpeg.length >> 1), Buffer.from([0xff, 0xd9])]);
    // An embedding app written against the last round may still pass it.
    const legacy = { verify: 'header' } as unknown as PublishOptions;
    await expect(server.notifier.publish(damaged, {}, legacy)).rejects.toThrow(/truncated|damaged/);
    const res = await fetch(`${server.baseUrl}/api/image`, { method: 'PUT', body: new Uint8Array(damaged), headers: { 'Content-Type': 'image/jpeg' } });
    expect(res.status).toBe(422);
    expect(await latest()).toBe(stored);
    const served = Buffer.from(await (await fetch(`${server.baseUrl}/web_image.jpg`)).arrayBuffer());
    expect(served.equals(good)).toBe(true);
  });
});
