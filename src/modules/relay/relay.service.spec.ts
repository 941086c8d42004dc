import { Logger } from '@nestjs/common';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { resolveImageServerOptions } from '../../config/image-server-options.js';
import { RecordingHub } from '../../../test/helpers/recording-hub.js';
import { RelayService, type RelayTiming, type RelayedImage } from './relay.service.js';

const TOKEN = 'club-a-secret-0123456789';

const FAST: Partial<RelayTiming> = { firstRetryMs: 20, maxRetryMs: 100, refusedRetryMs: 600_000, connectTimeoutMs: 1000, uploadTimeoutMs: 5000 };

function image(version: number): RelayedImage {
  return { version, jpeg: Buffer.from(`jpeg bytes of version ${version}`), stackSize: version * 10, exposureSeconds: version * 2.5, object: 'M 42' };
}

const hubs: RecordingHub[] = [];
const relays: RelayService[] = [];

async function setUp(timing: Partial<RelayTiming> = FAST, token: string | null = TOKEN): Promise<{ hub: RecordingHub; relay: RelayService }> {
  const hub = new RecordingHub();
  hubs.push(hub);
  const relay = new RelayService(resolveImageServerOptions({ upstreamUrl: await hub.start(), upstreamToken: token ?? undefined }), timing);
  relays.push(relay);
  return { hub, relay };
}

beforeEach(() => {
  // Quiet: the tests that count log lines spy on these again.
  vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  vi.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
});

afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(relays.splice(0).map((r) => r.onApplicationShutdown()));
  await Promise.all(hubs.splice(0).map((h) => h.stop()));
});

describe('RelayService', () => {
  it('is off without upstreamUrl: nothing sent, /status says off', async () => {
    const relay = new RelayService(resolveImageServerOptions({}));
    relay.offer(image(1));
    await relay.idle();
    expect(relay.enabled).toBe(false);
    expect(relay.status()).toEqual({ state: 'off', lastError: null, lastSentVersion: null });
  });

  it('is off in the app of a scope other than main, which copies the options', async () => {
    const { hub, relay: mainRelay } = await setUp();
    const relay = new RelayService({ ...resolveImageServerOptions({ upstreamUrl: 'http://127.0.0.1:9/s/club-a/', upstreamToken: TOKEN }), scopeId: 'guest' }, FAST);
    relay.offer(image(1));
    mainRelay.offer(image(2));
    await Promise.all([relay.idle(), mainRelay.idle()]);
    expect(relay.status()).toEqual({ state: 'off', lastError: null, lastSentVersion: null });
    expect(hub.received.map((r) => r.url.searchParams.get('stackSize'))).toEqual(['20']);
  });

  it('sends the JPEG with the metrics, the object and the bearer token to <UPSTREAM_URL>api/image', async () => {
    const { hub, relay } = await setUp();
    relay.offer(image(3));
    await relay.idle();
    expect(hub.received).toHaveLength(1);
    const [put] = hub.received;
    expect(put.url.pathname).toBe('/s/club-a/api/image');
    expect(Object.fromEntries(put.url.searchParams)).toEqual({ stackSize: '30', exposure: '7.5', object: 'M 42' });
    expect(put.authorization).toBe(`Bearer ${TOKEN}`);
    expect(put.contentType).toBe('image/jpeg');
    expect(put.body.equals(image(3).jpeg)).toBe(true);
    expect(relay.status()).toEqual({ state: 'ok', lastError: null, lastSentVersion: 3 });
  });

  it('sends no Authorization without a token, and no object when the image names none', async () => {
    const { hub, relay } = await setUp(FAST, null);
    relay.offer({ ...image(1), object: null, exposureSeconds: 1 / 3 });
    await relay.idle();
    expect(hub.received[0].authorization).toBeUndefined();
    expect(Object.fromEntries(hub.received[0].url.searchParams)).toEqual({ stackSize: '10', exposure: '0.333333' });
  });

  it('newest wins: 10 publishes to a slow hub arrive as an increasing subsequence ending with the latest', async () => {
    const { hub, relay } = await setUp();
    hub.answer = () => ({ status: 200, delayMs: 40 });
    for (let v = 1; v <= 10; v++) {
      relay.offer(image(v));
      // The next publish a moment later, as a stacker's would be.
      await new Promise((resolve) => setImmediate(resolve));
      if (v % 3 === 0) {
        await hub.requests(hub.received.length + 1);
      }
    }
    await relay.idle();
    const sizes = hub.received.map((r) => Number(r.url.searchParams.get('stackSize')));
    expect(sizes.at(-1)).toBe(100);
    expect(sizes.length).toBeLessThan(10);
    expect(sizes.length).toBeGreaterThan(1);
    for (let i = 1; i < sizes.length; i++) {
      expect(sizes[i]).toBeGreaterThan(sizes[i - 1]);
    }
    expect(hub.received.at(-1)!.body.equals(image(10).jpeg)).toBe(true);
    expect(relay.status().lastSentVersion).toBe(10);
  });

  it('an older version offered after a newer one is never sent', async () => {
    const { hub, relay } = await setUp();
    relay.offer(image(5));
    await relay.idle();
    relay.offer(image(4));
    relay.offer(image(6));
    await relay.idle();
    expect(hub.received.map((r) => r.url.searchParams.get('stackSize'))).toEqual(['50', '60']);
  });

  it('retries with backoff: 503 three times then 200 goes failing -> ok, a newer image replacing the one waiting, one log line per change', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const log = vi.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    const { hub, relay } = await setUp();
    const states: string[] = [];
    hub.answer = (n) => {
      states.push(relay.status().state);
      return n < 3 ? { status: 503, body: '{"statusCode":503,"message":"the web folder cannot be written"}' } : { status: 200 };
    };
    relay.offer(image(1));
    await hub.requests(2);
    relay.offer(image(2));
    await hub.requests(4);
    await relay.idle();
    expect(states).toEqual(['ok', 'failing', 'failing', 'failing']);
    expect(hub.received.map((r) => r.url.searchParams.get('stackSize'))).toEqual(['10', '10', '20', '20']);
    expect(relay.status()).toEqual({ state: 'ok', lastError: 'the hub answered 503: the web folder cannot be written', lastSentVersion: 2 });
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0][0])).toContain('the hub answered 503');
    expect(log).toHaveBeenCalledTimes(1);
  });

  it('a refusal (401) is not retried in a loop: it waits for the next publish, and the token never shows', async () => {
    const { hub, relay } = await setUp();
    hub.answer = (n) => (n === 0 ? { status: 401, body: `{"statusCode":401,"message":"wrong token ${TOKEN}"}` } : { status: 200 });
    // Beside it, a relay whose hub answers 503: it retries every 20-100 ms meanwhile.
    const failing = await setUp();
    failing.hub.answer = () => ({ status: 503 });
    relay.offer(image(1));
    failing.relay.offer(image(1));
    await hub.requests(1);
    await failing.hub.requests(6);
    expect(hub.received).toHaveLength(1);
    const status = relay.status();
    expect(status).toEqual({ state: 'failing', lastError: 'the hub answered 401: wrong token ***', lastSentVersion: null });
    expect(JSON.stringify(status)).not.toContain(TOKEN);
    relay.offer(image(2));
    await relay.idle();
    expect(hub.received.map((r) => r.url.searchParams.get('stackSize'))).toEqual(['10', '20']);
    expect(relay.status()).toMatchObject({ state: 'ok', lastSentVersion: 2 });
  });

  it.each([403, 404, 409, 413, 422])('%i is a refusal too: one request, then the next publish', async (code) => {
    const { hub, relay } = await setUp();
    hub.answer = (n) => (n === 0 ? { status: code, body: `{"message":"no (${code})"}` } : { status: 200 });
    const failing = await setUp();
    failing.hub.answer = () => ({ status: 503 });
    relay.offer(image(1));
    failing.relay.offer(image(1));
    await failing.hub.requests(4);
    await hub.requests(1);
    expect(hub.received).toHaveLength(1);
    expect(relay.status()).toMatchObject({ state: 'failing', lastError: `the hub answered ${code}: no (${code})` });
  });

  it('a hub that never answers times out and is retried; a hub that is gone is retried until it is back', async () => {
    const { hub, relay } = await setUp({ ...FAST, uploadTimeoutMs: 300 });
    const failing = await setUp();
    failing.hub.answer = () => ({ status: 503, body: '{}' });
    failing.relay.offer(image(1));
    await failing.hub.requests(1);
    hub.answer = (n) => (n === 0 ? 'hold' : { status: 200 });
    relay.offer(image(1));
    await relay.idle();
    expect(hub.received).toHaveLength(2);
    expect(relay.status()).toMatchObject({ state: 'ok', lastSentVersion: 1 });
    expect(relay.status().lastError).toMatch(/could not reach the hub: .*timeout/i);
    // A hub's answer without a message: its status line.
    expect(failing.relay.status().lastError).toBe('the hub answered 503: Service Unavailable');

    // Nothing listens on the port any more: connection refused, retried, logged once.
    await hub.stop();
    hubs.splice(hubs.indexOf(hub), 1);
    const warned = new Promise<string>((resolve) => vi.spyOn(Logger.prototype, 'warn').mockImplementation((message: unknown) => resolve(String(message))));
    relay.offer(image(2));
    expect(await warned).toMatch(/is not taking images: could not reach the hub: ECONNREFUSED/);
    expect(relay.status()).toMatchObject({ lastSentVersion: 1, lastError: expect.stringMatching(/ECONNREFUSED/) as unknown });
    expect(relay.status().state).toBe('failing');
  });
});
