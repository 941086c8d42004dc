import { afterEach, describe, expect, it } from 'vitest';
import { makePng } from '../helpers/images.js';
import { RecordingHub } from '../helpers/recording-hub.js';
import { freePort, runService, spawnService, type SpawnedService } from '../helpers/spawn-service.js';
import { makeTempFolder } from '../helpers/temp-folder.js';
import { RecordingClient } from '../helpers/ws-client.js';

const TOKEN = 'club-a-secret-0123456789';

interface Upstream {
  state: string;
  lastError: string | null;
  lastSentVersion: number | null;
}

const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) {
    await cleanup();
  }
});

async function laptop(env: Record<string, string>): Promise<SpawnedService> {
  const work = await makeTempFolder('stackcast-laptop-');
  cleanups.push(() => work.remove());
  const service = await spawnService({ WORK_FOLDER: work.path, ...env });
  cleanups.push(() => service.kill());
  return service;
}

async function hub(): Promise<{ hub: RecordingHub; url: string }> {
  const recording = new RecordingHub();
  const url = await recording.start();
  cleanups.push(() => recording.stop());
  return { hub: recording, url };
}

async function upstream(service: SpawnedService): Promise<{ upstream: Upstream; text: string }> {
  const text = await (await fetch(`${service.baseUrl}/status`)).text();
  return { upstream: (JSON.parse(text) as { upstream: Upstream }).upstream, text };
}

async function publish(service: SpawnedService, body: Buffer, query: string, type = 'image/png'): Promise<void> {
  const res = await fetch(`${service.baseUrl}/api/image?${query}`, { method: 'PUT', headers: { 'content-type': type }, body: new Uint8Array(body) });
  expect(res.status).toBe(200);
}

// Bounds for a loaded machine, where starting a service alone may take 20 s.
describe('relay: UPSTREAM_URL (a laptop feeding a hub)', { timeout: 90_000 }, () => {
  it('a PNG published on the laptop reaches the hub as the laptop\'s JPEG, with the metrics, the object and the token; /status says ok without the token', async () => {
    const { hub: recording, url } = await hub();
    const service = await laptop({ UPSTREAM_URL: url.replace(/\/$/, ''), UPSTREAM_TOKEN: TOKEN });
    expect((await upstream(service)).upstream).toEqual({ state: 'ok', lastError: null, lastSentVersion: null });
    await publish(service, await makePng({ width: 96, height: 64 }), 'stackSize=7&exposure=35&object=M%2042');
    await recording.requests(1);
    const [put] = recording.received;
    const local = Buffer.from(await (await fetch(`${service.baseUrl}/web_image.jpg`)).arrayBuffer());
    expect(put.body.equals(local)).toBe(true);
    expect(put.contentType).toBe('image/jpeg');
    expect(put.url.pathname).toBe('/s/club-a/api/image');
    expect(Object.fromEntries(put.url.searchParams)).toEqual({ stackSize: '7', exposure: '35', object: 'M 42' });
    expect(put.authorization).toBe(`Bearer ${TOKEN}`);
    const data = (await (await fetch(`${service.baseUrl}/data.json`)).json()) as { VERSION: number };
    await expect.poll(async () => (await upstream(service)).upstream, { timeout: 5000 }).toEqual({ state: 'ok', lastError: null, lastSentVersion: data.VERSION });
    expect((await upstream(service)).text).not.toContain(TOKEN);
    expect(service.stdout() + service.stderr()).not.toContain(TOKEN);
  });

  it('a failing hub costs the local viewers nothing: every publish answers and is announced, /status says failing with the hub\'s message, one log line', async () => {
    const { hub: recording, url } = await hub();
    recording.answer = () => ({ status: 503, body: `{"statusCode":503,"message":"too busy for ${TOKEN}"}` });
    const service = await laptop({ UPSTREAM_URL: url, UPSTREAM_TOKEN: TOKEN });
    const viewer = await RecordingClient.connect(`${service.baseUrl.replace('http', 'ws')}/ws`);
    cleanups.push(() => Promise.resolve(viewer.close()));
    const png = await makePng();
    for (let n = 1; n <= 5; n++) {
      await publish(service, png, `stackSize=${n}`);
    }
    await viewer.waitFor((c) => c.count('new_image') >= 5, 10_000, '5 new_image');
    // The first publish and two retries (1 s, then 2 s at most).
    await recording.requests(3);
    const { upstream: state, text } = await upstream(service);
    expect(state).toEqual({ state: 'failing', lastError: 'the hub answered 503: too busy for ***', lastSentVersion: null });
    expect(text).not.toContain(TOKEN);
    expect(service.stdout().match(/is not taking images/g)).toHaveLength(1);
    // Only the newest publish is retried: never an older one after a newer one.
    const sizes = recording.received.map((r) => Number(r.url.searchParams.get('stackSize')));
    expect([...sizes].sort((a, b) => a - b)).toEqual(sizes);
    expect(sizes.at(-1)).toBe(5);
    recording.answer = () => ({ status: 200 });
    await expect.poll(async () => (await upstream(service)).upstream.state, { timeout: 10_000 }).toBe('ok');
    expect(service.stdout().match(/takes images again/g)).toHaveLength(1);
  });

  it.each([
    [{ UPSTREAM_URL: 'http://127.0.0.1:9/hub/', UPSTREAM_TOKEN: TOKEN }, /UPSTREAM_URL="http:\/\/127\.0\.0\.1:9\/hub\/" is invalid: expected the URL of a scope on the hub, http\(s\):\/\/host\[:port\]\/s\/<id>\//],
    [{ UPSTREAM_URL: 'http://127.0.0.1:9/s/club-a/', UPSTREAM_TOKEN: `${TOKEN} x` }, /UPSTREAM_TOKEN \(26 characters\) is invalid: expected a token of 16 to 1024 printable characters/],
  ])('a bad relay setting stops the start with an error naming it, never the token', async (env, message) => {
    const work = await makeTempFolder('stackcast-laptop-');
    cleanups.push(() => work.remove());
    const run = runService({ WORK_FOLDER: work.path, PORT: String(await freePort()), ...env });
    expect(await run.exited).not.toBe(0);
    expect(run.err() + run.out()).toMatch(message);
    expect(run.err() + run.out()).not.toContain(TOKEN);
  });
});
