import { createClient } from 'redis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeJpeg } from '../helpers/images.js';
import { startRedisServer, type RedisTestServer } from '../helpers/redis-server.js';
import { spawnService, type SpawnedService } from '../helpers/spawn-service.js';
import { makeTempFolder } from '../helpers/temp-folder.js';
import { RecordingClient } from '../helpers/ws-client.js';

interface Replica extends SpawnedService {
  viewer: RecordingClient;
}

interface ClusterBody {
  cluster?: { redis: 'up' | 'down'; replica: string };
}

/** Polls `probe` every 20 ms until it holds; rejects after `timeoutMs`. */
async function until(probe: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function clusterOf(r: SpawnedService): Promise<ClusterBody['cluster']> {
  return ((await (await fetch(`${r.baseUrl}/status`)).json()) as ClusterBody).cluster;
}

async function imageOf(r: SpawnedService): Promise<Buffer> {
  return Buffer.from(await (await fetch(`${r.baseUrl}/web_image.jpg`)).arrayBuffer());
}

function put(r: SpawnedService, jpeg: Buffer, query = ''): Promise<Response> {
  return fetch(`${r.baseUrl}/api/image${query}`, { method: 'PUT', body: new Uint8Array(jpeg), headers: { 'Content-Type': 'image/jpeg' } });
}

/** Starting Nest takes seconds on a busy 2-core machine; the waits end as soon as it answers. */
const START_TIMEOUT_MS = 60_000;

describe('replicas sharing one Redis (child processes, real redis-server)', { timeout: 180_000 }, () => {
  let redis: RedisTestServer;
  let namespace: string;
  const replicas: Replica[] = [];
  const folders: { remove(): Promise<void> }[] = [];

  async function startReplica(): Promise<Replica> {
    const temp = await makeTempFolder();
    folders.push(temp);
    const service = await spawnService({
      WORK_FOLDER: temp.path,
      REDIS_URL: redis.url,
      REDIS_NAMESPACE: namespace,
      DISPLAYED_ADDRESS: 'auto',
    }, START_TIMEOUT_MS);
    const viewer = await RecordingClient.connect(`ws://127.0.0.1:${service.port}/ws`);
    const replica = Object.assign(service, { viewer });
    replicas.push(replica);
    await until(async () => (await clusterOf(replica))?.redis === 'up', 'the replica to reach Redis');
    return replica;
  }

  beforeAll(async () => {
    redis = await startRedisServer();
  });

  afterEach(async () => {
    await Promise.all(replicas.splice(0).map((r) => (r.viewer.socket.terminate(), r.kill('SIGKILL'))));
    await Promise.all(folders.splice(0).map((f) => f.remove()));
    if (redis.pid() === undefined) {
      await redis.restart();
    }
  });

  afterAll(async () => {
    await redis.stop();
  });

  const fresh = (): void => {
    namespace = `e2e-${Math.floor(Math.random() * 1e9)}`;
  };

  it('a publish on one replica reaches the viewers of every replica, byte-identical, with one version sequence', async () => {
    fresh();
    const [a, b] = await Promise.all([startReplica(), startReplica()]);
    const ids = [(await clusterOf(a))?.replica, (await clusterOf(b))?.replica];
    expect(ids[0]).not.toBe(ids[1]);

    const first = await makeJpeg({ color: { r: 10, g: 200, b: 30 } });
    expect((await put(a, first, '?stackSize=3&exposure=90')).status).toBe(200);
    for (const r of [a, b]) {
      await r.viewer.waitFor((c) => c.count('new_image') >= 1, 5000, 'new_image');
      expect((await imageOf(r)).equals(first)).toBe(true);
      expect(await (await fetch(`${r.baseUrl}/data.json`)).json()).toMatchObject({ STACK_SIZE: 3, EXPO: '0:01:30' });
    }

    // Concurrent publishes on both replicas: distinct versions, the same final image everywhere.
    const images = await Promise.all([1, 2, 3, 4].map((i) => makeJpeg({ color: { r: i * 40, g: 20, b: 20 } })));
    const answers = await Promise.all(images.map((img, i) => put(i % 2 === 0 ? a : b, img)));
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    const raw = createClient({ url: redis.url });
    await raw.connect();
    try {
      expect(await raw.get(`${namespace}:latest`)).toBe('5');
      expect(await raw.get(`${namespace}:version`)).toBe('5');
    } finally {
      await raw.close();
    }
    await until(async () => (await imageOf(a)).equals(await imageOf(b)), 'both replicas on the same image');
    const finalA = await imageOf(a);
    expect(images.filter((img) => img.equals(finalA))).toHaveLength(1);

    // One version sequence: Redis's. Each viewer sees versions only grow, each once, and
    // every replica serves the announced version's pyramid and names it in data.json.
    for (const r of [a, b]) {
      const versions = (): unknown[] => r.viewer.ofType('new_image').map((m) => m.version);
      await r.viewer.waitFor(() => versions().includes(5), 10_000, 'new_image of version 5');
      const seen = versions() as number[];
      expect(seen[0]).toBe(1);
      expect(seen.every((v, i) => i === 0 || v > (seen[i - 1] ?? 0)), `versions seen: ${seen.join(", ")}`).toBe(true);
      expect(((await (await fetch(`${r.baseUrl}/data.json`)).json()) as { VERSION: number }).VERSION).toBe(5);
      expect(((await (await fetch(`${r.baseUrl}/status`)).json()) as { version: number }).version).toBe(5);
      const dzi = await fetch(`${r.baseUrl}/v/5/image.dzi`);
      expect(dzi.status).toBe(200);
      expect(await dzi.text()).toMatch(/<Image[^>]*TileSize=/);
    }
  });

  it('Redis down: viewers stay, the last image is served, publishes answer 503; back: resumes without a restart', async () => {
    fresh();
    const [a, b] = await Promise.all([startReplica(), startReplica()]);
    const before = await makeJpeg({ color: { r: 200, g: 200, b: 10 } });
    expect((await put(a, before)).status).toBe(200);
    await b.viewer.waitFor((c) => c.count('new_image') >= 1, 5000, 'new_image on b');

    await redis.kill();
    await until(async () => (await clusterOf(a))?.redis === 'down' && (await clusterOf(b))?.redis === 'down', 'both replicas to see Redis down');
    const refused = await put(b, await makeJpeg({ color: { r: 1, g: 2, b: 3 } }));
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { message: string }).message).toMatch(/Redis is unreachable.*nothing was published/);
    expect((await imageOf(a)).equals(before)).toBe(true);
    expect((await imageOf(b)).equals(before)).toBe(true);
    expect(a.viewer.closeCode).toBeUndefined();
    expect(b.viewer.closeCode).toBeUndefined();

    await redis.restart();
    await until(async () => (await clusterOf(a))?.redis === 'up' && (await clusterOf(b))?.redis === 'up', 'both replicas back up');
    const after = await makeJpeg({ color: { r: 20, g: 20, b: 220 } });
    expect((await put(b, after)).status).toBe(200);
    await a.viewer.waitFor((c) => c.count('new_image') >= 2, 5000, 'second new_image on a');
    expect((await imageOf(a)).equals(after)).toBe(true);
    const raw = createClient({ url: redis.url });
    await raw.connect();
    try {
      // Redis came back empty: the version went on from 1, it did not start again at 1.
      expect(await raw.get(`${namespace}:latest`)).toBe('2');
    } finally {
      await raw.close();
    }
  });

  it('a replica killed with SIGKILL costs only its viewers; a replica started late catches up', async () => {
    fresh();
    const [a, b] = await Promise.all([startReplica(), startReplica()]);
    await b.kill('SIGKILL');
    await b.viewer.closed;
    const img = await makeJpeg({ color: { r: 90, g: 10, b: 160 } });
    expect((await put(a, img, '?stackSize=7')).status).toBe(200);
    await a.viewer.waitFor((c) => c.count('new_image') >= 1, 5000, 'new_image on a');

    const late = await startReplica();
    await until(async () => (await imageOf(late)).equals(img), 'the late replica to show the latest image');
    expect(await (await fetch(`${late.baseUrl}/data.json`)).json()).toMatchObject({ STACK_SIZE: 7, VERSION: 1 });
    // The late replica cut version 1's pyramid itself, and says so to a viewer that connects.
    expect((await fetch(`${late.baseUrl}/v/1/image.dzi`)).status).toBe(200);
    const hello = await RecordingClient.connect(`ws://127.0.0.1:${late.port}/ws`);
    try {
      await hello.waitFor((c) => c.count('hello') >= 1, 5000, 'hello');
      expect(hello.ofType('hello')[0]?.version).toBe(1);
    } finally {
      hello.socket.terminate();
    }
  });

  it('hostile Redis writes cost nothing: a 2^53-1 announcement, bad metrics and garbage metrics neither wedge nor reach data.json', async () => {
    fresh();
    const [a, b] = await Promise.all([startReplica(), startReplica()]);
    expect((await put(a, await makeJpeg({ color: { r: 5, g: 90, b: 5 } }), '?stackSize=3&exposure=90')).status).toBe(200);
    const raw = createClient({ url: redis.url });
    await raw.connect();
    try {
      await raw.publish(`${namespace}:announce`, '9007199254740991');
      // A version planted by hand, with metrics no HTTP request could carry.
      await raw.set(`${namespace}:metrics:2`, JSON.stringify({ stackSize: -5, exposureSeconds: 'NaN:NaN:NaN', imageOf: 1 }));
      await raw.set(`${namespace}:latest`, '2');
      await raw.set(`${namespace}:version`, '2');
      await raw.publish(`${namespace}:announce`, '2');
      for (const r of [a, b]) {
        await r.viewer.waitFor((c) => c.count('new_image') >= 2, 10_000, 'version 2 applied (metrics only)');
        expect(await (await fetch(`${r.baseUrl}/data.json`)).json()).toMatchObject({ STACK_SIZE: 3, EXPO: '0:01:30' });
        expect(r.stdout()).toMatch(/announcement of version 9007199254740991 ignored/);
        expect(r.stdout()).toMatch(/stackSize must be an integer ≥ 0, got -5; skipped/);
      }

      // Publishes go on at once, from either replica, with versions Redis can count.
      const next = await makeJpeg({ color: { r: 5, g: 5, b: 90 } });
      expect((await put(b, next, '?stackSize=4')).status).toBe(200);
      expect(await raw.get(`${namespace}:latest`)).toBe('3');
      await raw.set(`${namespace}:metrics:3`, 'garbage');
      const last = await makeJpeg({ color: { r: 90, g: 5, b: 90 } });
      const answer = await put(a, last, '?stackSize=5');
      expect(answer.status).toBe(200);
      for (const r of [a, b]) {
        await until(async () => (await imageOf(r)).equals(last), 'the last image on every replica');
        expect(await (await fetch(`${r.baseUrl}/data.json`)).json()).toMatchObject({ STACK_SIZE: 5, VERSION: 4 });
      }
      expect(a.stdout()).toMatch(/metrics:3 held "garbage", not a JSON object of metrics/);
    } finally {
      await raw.close();
    }
  });

  it('GET /metrics: Prometheus text with the viewers, publishes and Redis state', async () => {
    fresh();
    const a = await startReplica();
    expect((await put(a, await makeJpeg())).status).toBe(200);
    const res = await fetch(`${a.baseUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/^stackcast_viewers_connected 1$/m);
    expect(text).toMatch(/^stackcast_publishes_total\{result="ok"\} 1$/m);
    expect(text).toMatch(/^stackcast_publish_duration_seconds_count 1$/m);
    expect(text).toMatch(/^stackcast_redis_up 1$/m);
    // Through a proxy (or from another machine) without a token: the control auth refuses it.
    expect((await fetch(`${a.baseUrl}/metrics`, { headers: { 'X-Forwarded-For': '203.0.113.9' } })).status).toBe(403);
  });
});
