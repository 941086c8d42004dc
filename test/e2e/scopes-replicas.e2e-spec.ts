import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeJpeg } from '../helpers/images.js';
import { startRedisServer, type RedisTestServer } from '../helpers/redis-server.js';
import { freePort, runService, spawnService, type SpawnedService } from '../helpers/spawn-service.js';
import { makeTempFolder } from '../helpers/temp-folder.js';
import { RecordingClient } from '../helpers/ws-client.js';

/** Polls `probe` every 20 ms until it holds; rejects after `timeoutMs`. */
async function until(probe: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function scopeIds(service: SpawnedService): Promise<string[]> {
  const body = (await (await fetch(`${service.baseUrl}/api/scopes`)).json()) as { scopes: { id: string }[] };
  return body.scopes.map((s) => s.id);
}

async function imageOf(service: SpawnedService, path: string): Promise<Buffer | undefined> {
  const res = await fetch(`${service.baseUrl}${path}`);
  return res.status === 200 ? Buffer.from(await res.arrayBuffer()) : undefined;
}

function put(service: SpawnedService, path: string, jpeg: Buffer): Promise<Response> {
  return fetch(`${service.baseUrl}${path}`, { method: 'PUT', body: new Uint8Array(jpeg), headers: { 'Content-Type': 'image/jpeg' } });
}

const START_TIMEOUT_MS = 60_000;

describe('scopes: bad SCOPE_TOKENS / MAX_SCOPES stop the start with one clear line', { timeout: 120_000 }, () => {
  it.each([
    ['SCOPE_TOKENS', 'alpha=short-secret', /^SCOPE_TOKENS is invalid \(entry 1: the token of "alpha" has 12 characters, at least 16 are needed\): expected id=token/],
    ['SCOPE_TOKENS', 'Bad_Id=0123456789abcdef-secret', /^SCOPE_TOKENS is invalid \(entry 1: the id \(6 characters\) does not match/],
    ['SCOPE_TOKENS', 'alpha=0123456789abcdef-secret,alpha=0123456789abcdef-other', /^SCOPE_TOKENS is invalid \(entry 2: the id "alpha" is given twice\)/],
    ['SCOPE_TOKENS', 'just-a-token-0123456789', /^SCOPE_TOKENS is invalid \(entry 1 is not id=token\)/],
    ['MAX_SCOPES', '0', /^MAX_SCOPES="0" is invalid: expected an integer number of scopes from 1 to 64, main included$/],
    ['MAX_SCOPES', '65', /^MAX_SCOPES="65" is invalid: expected an integer number of scopes from 1 to 64/],
  ])('%s=%s: exit 1, the rule named, no token printed, nothing written', async (name, value, line) => {
    const temp = await makeTempFolder();
    const work = join(temp.path, 'work');
    const run = runService({ PORT: String(await freePort()), WORK_FOLDER: work, [name]: value }, temp.path);
    expect(await run.exited).toBe(1);
    const lines = run.err().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(line);
    for (const secret of ['short-secret', '0123456789abcdef-secret', '0123456789abcdef-other', 'just-a-token-0123456789']) {
      expect(run.err()).not.toContain(secret);
    }
    expect(existsSync(work)).toBe(false);
    await temp.remove();
  });
});

describe('scopes across two replicas sharing one Redis (child processes, real redis-server)', { timeout: 240_000 }, () => {
  let redis: RedisTestServer;
  const replicas: SpawnedService[] = [];
  const folders: { remove(): Promise<void> }[] = [];
  const viewers: RecordingClient[] = [];

  async function startReplica(): Promise<SpawnedService> {
    const temp = await makeTempFolder();
    folders.push(temp);
    const service = await spawnService({ WORK_FOLDER: temp.path, REDIS_URL: redis.url, REDIS_NAMESPACE: 'scopes-e2e' }, START_TIMEOUT_MS);
    replicas.push(service);
    await until(async () => ((await (await fetch(`${service.baseUrl}/status`)).json()) as { cluster?: { redis: string } }).cluster?.redis === 'up', 'Redis up');
    return service;
  }

  beforeAll(async () => {
    redis = await startRedisServer();
  });

  afterEach(async () => {
    viewers.splice(0).forEach((v) => v.socket.terminate());
    await Promise.all(replicas.splice(0).map((r) => r.kill('SIGKILL')));
    await Promise.all(folders.splice(0).map((f) => f.remove()));
  });

  afterAll(async () => {
    await redis.stop();
  });

  it('a scope published on replica A is served and listed by replica B, versions per scope; a delete on A removes it on B', async () => {
    const [a, b] = await Promise.all([startReplica(), startReplica()]);
    const first = await makeJpeg({ color: { r: 200, g: 20, b: 20 } });
    expect((await put(a, '/s/x/api/image', first)).status).toBe(200);
    // B learns of x (announced, or on demand) and fetches its image from Redis.
    await until(async () => (await imageOf(b, '/s/x/web_image.jpg'))?.equals(first) === true, 'B to serve /s/x/web_image.jpg');
    expect(await scopeIds(b)).toEqual(['main', 'x']);
    const viewer = await RecordingClient.connect(`ws://127.0.0.1:${b.port}/s/x/ws`);
    viewers.push(viewer);
    const second = await makeJpeg({ color: { r: 20, g: 200, b: 20 } });
    expect((await put(a, '/s/x/api/image', second)).status).toBe(200);
    await viewer.waitFor((c) => c.count('new_image') === 1, 20_000, 'new_image on B for x');
    // x's versions are its own: its second image is its version 2, whatever main's are.
    expect(viewer.ofType('new_image')[0].version).toBe(2);
    await until(async () => (await imageOf(b, '/s/x/web_image.jpg'))?.equals(second) === true, 'B to serve the second image');
    expect((await (await fetch(`${b.baseUrl}/status`)).json()) as { version: number | null }).toMatchObject({ version: null });
    // A delete on A: B's viewers of x are told, x is gone from B's list.
    expect((await fetch(`${a.baseUrl}/s/x`, { method: 'DELETE' })).status).toBe(200);
    await viewer.closed;
    expect(viewer.count('disconnect')).toBe(1);
    await until(async () => (await scopeIds(b)).length === 1, 'B to drop x');
    expect((await fetch(`${b.baseUrl}/s/x/web_image.jpg`)).status).toBe(404);
  });
});
