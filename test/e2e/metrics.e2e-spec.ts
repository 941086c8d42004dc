import { afterEach, describe, expect, it } from 'vitest';
import { makeJpeg } from '../helpers/images.js';
import { spawnService } from '../helpers/spawn-service.js';
import { makeTempFolder } from '../helpers/temp-folder.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { RecordingClient } from '../helpers/ws-client.js';

const TOKEN = 'metrics-test-token-0123456789';

function sample(text: string, name: string): number {
  const match = new RegExp(`^${name.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
  if (!match) {
    throw new Error(`${name} not in:\n${text}`);
  }
  return Number(match[1]);
}

describe('GET /metrics', () => {
  const servers: TestServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  it('two instances in one process each keep their own registry: viewers and bytes served', async () => {
    const a = await startTestServer({ controlToken: TOKEN });
    const b = await startTestServer({ controlToken: TOKEN });
    servers.push(a, b);
    const auth = { Authorization: `Bearer ${TOKEN}` };
    const viewers = await Promise.all([RecordingClient.connect(a.wsUrl), RecordingClient.connect(a.wsUrl)]);
    try {
      const jpeg = await makeJpeg({ width: 200, height: 100 });
      await a.notifier.publish(jpeg);
      const before = sample(await (await fetch(`${a.baseUrl}/metrics`, { headers: auth })).text(), 'stackcast_http_bytes_served_total');
      const image = await fetch(`${a.baseUrl}/web_image.jpg`);
      expect(Buffer.from(await image.arrayBuffer()).equals(jpeg)).toBe(true);
      const textA = await (await fetch(`${a.baseUrl}/metrics`, { headers: auth })).text();
      expect(sample(textA, 'stackcast_viewers_connected')).toBe(2);
      // The publish's new_image went out once (from BroadcastService), dropping nobody.
      expect(sample(textA, 'stackcast_broadcast_duration_seconds_count')).toBe(1);
      expect(sample(textA, 'stackcast_viewers_dropped_total')).toBe(0);
      expect(sample(textA, 'stackcast_publishes_total{result="ok"}')).toBe(1);
      // The bytes of the image, plus the previous /metrics answer.
      expect(sample(textA, 'stackcast_http_bytes_served_total') - before).toBeGreaterThanOrEqual(jpeg.length);
      const textB = await (await fetch(`${b.baseUrl}/metrics`, { headers: auth })).text();
      expect(sample(textB, 'stackcast_viewers_connected')).toBe(0);
      expect(sample(textB, 'stackcast_broadcast_duration_seconds_count')).toBe(0);
      expect(textB).not.toMatch(/stackcast_redis_up/);
    } finally {
      for (const v of viewers) {
        v.socket.terminate();
      }
    }
  });

  it('needs the control auth; METRICS_PUBLIC opens it', async () => {
    const closed = await startTestServer({ controlToken: TOKEN });
    const open = await startTestServer({ controlToken: TOKEN, metricsPublic: true });
    servers.push(closed, open);
    expect((await fetch(`${closed.baseUrl}/metrics`)).status).toBe(401);
    expect((await fetch(`${closed.baseUrl}/metrics`, { headers: { Authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    const res = await fetch(`${open.baseUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/^# TYPE stackcast_publish_duration_seconds histogram$/m);
  });
});

describe('LOG_FORMAT=json', { timeout: 90_000 }, () => {
  it('prints one JSON object per line, and no terminal QR code', async () => {
    const temp = await makeTempFolder();
    const service = await spawnService({ WORK_FOLDER: temp.path, LOG_FORMAT: 'json' }, 60_000);
    try {
      await service.kill('SIGTERM');
      const lines = service.stdout().split('\n').filter((l) => l.trim() !== '');
      expect(lines.length).toBeGreaterThan(3);
      for (const line of lines) {
        expect(() => JSON.parse(line) as unknown, line).not.toThrow();
      }
      expect(lines.some((l) => (JSON.parse(l) as { message?: string }).message?.includes('starting') === true)).toBe(true);
    } finally {
      await service.kill('SIGKILL');
      await temp.remove();
    }
  });
});
