import { createHook } from 'node:async_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { DemoSourceService } from '../../src/modules/sources/demo-source.service.js';
import type { StatusBody } from '../../src/modules/status/status.controller.js';
import { decodeStrictly, waitUntil } from '../fixtures/sample-images.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { RecordingClient } from '../helpers/ws-client.js';

interface Snapshot {
  stackSize: number;
  expoSeconds: number;
  jpeg: Buffer;
}

const seconds = (expo: string): number => expo.split(':').reduce((total, part) => total * 60 + Number(part), 0);

describe('demo source (DEMO=true)', () => {
  let server: TestServer | undefined;
  let client: RecordingClient | undefined;

  afterEach(async () => {
    client?.close();
    await server?.close();
    server = undefined;
    client = undefined;
  });

  async function snapshot(s: TestServer): Promise<Snapshot> {
    const data = (await (await fetch(`${s.baseUrl}/data.json`)).json()) as { STACK_SIZE: number; EXPO: string };
    const jpeg = Buffer.from(await (await fetch(`${s.baseUrl}/web_image.jpg`)).arrayBuffer());
    return { stackSize: data.STACK_SIZE, expoSeconds: seconds(data.EXPO), jpeg };
  }

  it('publishes a growing synthetic stack to a real ws client: new images, STACK_SIZE and EXPO going up', async () => {
    server = await startTestServer({ demo: true, demoIntervalMs: 100 });
    client = await RecordingClient.connect(server.wsUrl);
    const seen: Snapshot[] = [];
    for (let i = 1; i <= 3; i++) {
      await client.waitFor((c) => c.count('new_image') >= i, 15_000, `demo frame ${i}`);
      seen.push(await snapshot(server));
    }
    for (let i = 1; i < seen.length; i++) {
      expect(seen[i].stackSize).toBeGreaterThan(seen[i - 1].stackSize);
      expect(seen[i].expoSeconds).toBeGreaterThan(seen[i - 1].expoSeconds);
      expect(seen[i].jpeg.equals(seen[i - 1].jpeg)).toBe(false);
    }
    // EXPO follows STACK_SIZE: 30 s a frame.
    const last = seen[seen.length - 1];
    expect(last.expoSeconds).toBe(last.stackSize * 30);
    const decoded = await decodeStrictly(last.jpeg);
    expect([decoded.format, decoded.width, decoded.height]).toEqual(['jpeg', 1280, 960]);
    const status = (await (await fetch(`${server.baseUrl}/status`)).json()) as StatusBody;
    expect(status.source).toBe('demo');
    expect(status.demo?.frames).toBeGreaterThanOrEqual(last.stackSize);
    expect(status.demo?.intervalMs).toBe(100);
    expect(status.lastImageAt).not.toBeNull();
    expect(status.watch).toBeUndefined();
  });

  it('clears its timer when the app closes, with no frame left half-way', async () => {
    const live = new Set<number>();
    const hook = createHook({
      init(id, type) {
        if (type === 'Timeout' && (new Error().stack ?? '').includes('demo-source.service')) {
          live.add(id);
        }
      },
      destroy(id) {
        live.delete(id);
      },
    }).enable();
    try {
      server = await startTestServer({ demo: true, demoIntervalMs: 100 });
      client = await RecordingClient.connect(server.wsUrl);
      await client.waitFor((c) => c.count('new_image') >= 2, 15_000, 'two demo frames');
      // Positive control: the hook does see the demo's timer while it runs.
      await waitUntil(() => live.size > 0, 2000, 'the demo timer to be seen');
      expect(live.size).toBeGreaterThan(0);
      const demo = server.app.get(DemoSourceService);
      client.close();
      await server.close();
      server = undefined;
      const frames = demo.status().frames;
      expect(frames).toBeGreaterThanOrEqual(2);
      await waitUntil(() => live.size === 0, 2000, 'the demo timer to be cleared');
      expect(demo.status().frames).toBe(frames);
    } finally {
      hook.disable();
    }
  });
});

describe('/status without an automatic source', () => {
  it('says the source is push, with no watch or demo details', async () => {
    const server = await startTestServer();
    try {
      const status = (await (await fetch(`${server.baseUrl}/status`)).json()) as StatusBody;
      expect(status.source).toBe('push');
      expect(status.watch).toBeUndefined();
      expect(status.demo).toBeUndefined();
      expect(status.lastImageAt).toBeNull();
    } finally {
      await server.close();
    }
  });
});
