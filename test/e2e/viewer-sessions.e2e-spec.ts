import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { afterEach, describe, expect, it } from 'vitest';
import { ServerLifecycle, ViewerSessions, ViewerWsAdapter, type ViewerEvent } from '../../src/index.js';
import { ExampleAudience, ExampleStacker, ExampleStackerModule } from '../example/stacker.module.js';
import { makeJpeg } from '../helpers/images.js';
import { makeTempFolder } from '../helpers/temp-folder.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { RecordingClient } from '../helpers/ws-client.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

interface Hello {
  type: 'hello';
  id: string;
  viewers: number;
  version?: number;
}

function helloOf(client: RecordingClient): Hello {
  const [hello] = client.ofType('hello');
  return hello as unknown as Hello;
}

async function connected(url: string, headers?: Record<string, string>): Promise<RecordingClient> {
  const client = await RecordingClient.connect(url, { headers });
  await client.waitFor((c) => c.count('hello') === 1, 5000, 'hello');
  return client;
}

function post(server: TestServer, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${server.baseUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

describe('viewer sessions over /ws and the control routes', () => {
  let server: TestServer | undefined;
  const clients: RecordingClient[] = [];

  afterEach(async () => {
    clients.splice(0).forEach((c) => c.close());
    await server?.close();
    server = undefined;
  });

  async function viewer(headers?: Record<string, string>): Promise<RecordingClient> {
    const client = await connected(server!.wsUrl, headers);
    clients.push(client);
    return client;
  }

  it('each connection gets an opaque id and a hello with the viewer count; GET /api/clients lists them', async () => {
    server = await startTestServer();
    const a = await viewer({ 'user-agent': 'PhoneA/1.0' });
    const b = await viewer({ 'user-agent': 'TabletB/2.0' });
    const helloA = helloOf(a);
    const helloB = helloOf(b);
    expect(helloA).toMatchObject({ type: 'hello', viewers: 1 });
    expect(helloB).toMatchObject({ type: 'hello', viewers: 2 });
    expect(helloA.id).toMatch(UUID);
    expect(helloB.id).not.toBe(helloA.id);
    // Only the waiting image so far, which has no version: hello carries none rather than a made-up one.
    expect('version' in helloA).toBe(false);

    const res = await fetch(`${server.baseUrl}/api/clients`);
    expect(res.status).toBe(200);
    const { clients: listed } = (await res.json()) as { clients: { id: string; address: string; userAgent: string; connectedAt: string }[] };
    expect(listed.map((c) => c.id)).toEqual([helloA.id, helloB.id]);
    expect(listed[0]).toMatchObject({ address: '127.0.0.1', userAgent: 'PhoneA/1.0' });
    expect(listed[1].userAgent).toBe('TabletB/2.0');
    expect(Date.now() - Date.parse(listed[0].connectedAt)).toBeLessThan(10_000);

    b.close();
    await b.closed;
    await waitUntil(async () => ((await (await fetch(`${server!.baseUrl}/api/clients`)).json()) as { clients: unknown[] }).clients.length === 1);
  });

  it('POST /api/messages sends a notice to every viewer; POST /api/clients/:id/messages to one only', async () => {
    server = await startTestServer();
    const a = await viewer();
    const b = await viewer();
    const res = await post(server, '/api/messages', { text: 'Switching to M42 in 5 minutes' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ sent: 2 });
    for (const c of [a, b]) {
      await c.waitFor((x) => x.count('notice') === 1, 5000, 'notice to all');
      expect(c.ofType('notice')[0]).toEqual({ type: 'notice', text: 'Switching to M42 in 5 minutes' });
    }

    const one = await post(server, `/api/clients/${helloOf(b).id}/messages`, { text: 'only for B' });
    expect(one.status).toBe(200);
    expect(await one.json()).toEqual({ sent: 1 });
    // A marker to everyone after it: once A has the marker, A would have had B's notice too.
    await post(server, '/api/messages', { text: 'marker' });
    await a.waitFor((x) => x.count('notice') === 2, 5000, 'marker');
    await b.waitFor((x) => x.count('notice') === 3, 5000, 'notice and marker');
    expect(a.ofType('notice').map((m) => m.text)).toEqual(['Switching to M42 in 5 minutes', 'marker']);
    expect(b.ofType('notice').map((m) => m.text)).toEqual(['Switching to M42 in 5 minutes', 'only for B', 'marker']);
  });

  it('DELETE /api/clients/:id tells that viewer to disconnect and closes it; the others stay', async () => {
    server = await startTestServer();
    const a = await viewer();
    const b = await viewer();
    const res = await fetch(`${server.baseUrl}/api/clients/${helloOf(a).id}`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ disconnected: helloOf(a).id });
    await a.closed;
    expect(a.count('disconnect')).toBe(1);
    expect(a.closeCode).toBe(1000);
    await post(server, '/api/messages', { text: 'still here' });
    await b.waitFor((x) => x.count('notice') === 1, 5000, 'notice after the drop');
    expect(b.count('disconnect')).toBe(0);
    const listed = (await (await fetch(`${server.baseUrl}/api/clients`)).json()) as { clients: { id: string }[] };
    expect(listed.clients.map((c) => c.id)).toEqual([helloOf(b).id]);
  });

  it('unknown ids are 404 with a message; bad bodies are 400 with a message', async () => {
    server = await startTestServer();
    await viewer();
    const unknownPost = await post(server, '/api/clients/nobody/messages', { text: 'hi' });
    expect(unknownPost.status).toBe(404);
    expect(((await unknownPost.json()) as { message: string }).message).toContain('no viewer with id "nobody"');
    const unknownDelete = await fetch(`${server.baseUrl}/api/clients/nobody`, { method: 'DELETE' });
    expect(unknownDelete.status).toBe(404);

    const cases: [unknown, string][] = [
      [{}, 'text must be a string'],
      [{ text: '' }, 'text must be 1 to 500 characters long'],
      [{ text: 'x'.repeat(501) }, 'text must be 1 to 500 characters long'],
      [{ text: '   ' }, 'text must contain a visible character'],
      [{ text: 42 }, 'text must be a string'],
      [{ text: 'ok', colour: 'red' }, 'property colour should not exist'],
    ];
    for (const [body, message] of cases) {
      const res = await post(server, '/api/messages', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(((await res.json()) as { message: string[] }).message).toContain(message);
    }
    const malformed = await post(server, '/api/messages', '{"text": ');
    expect(malformed.status).toBe(400);
    expect((await post(server, '/api/messages', { text: 'x'.repeat(500) })).status).toBe(200);
  });

  it('a notice of only invisible characters, with control characters or a bidi override is a 400 naming the problem, on both routes', async () => {
    server = await startTestServer();
    const phone = await viewer();
    const id = helloOf(phone).id;
    const cases: [string, RegExp][] = [
      ['\u200B', /visible character/],
      ['\u3164 \u200D', /visible character/],
      ['ding\u0007\u001B[2J', /control characters \(U\+0007 at position 4\)/],
      ['photo\u202Egpj.exe', /bidi .*\(U\+202E at position 5\)/],
    ];
    for (const [text, message] of cases) {
      for (const path of ['/api/messages', `/api/clients/${id}/messages`]) {
        const res = await post(server, path, { text });
        expect(res.status, `${path} ${JSON.stringify(text)}`).toBe(400);
        expect(((await res.json()) as { message: string[] }).message.join('\n')).toMatch(message);
      }
    }
    expect(phone.count('notice')).toBe(0);
    expect((await post(server, '/api/messages', { text: 'السماء صافية \u200F M31\nback soon' })).status).toBe(200);
    await phone.waitFor((c) => c.count('notice') === 1, 5000, 'the right-to-left notice');
  });

  it('control auth: 401 without the token when one is set, 403 from a web page without one', async () => {
    server = await startTestServer({ controlToken: 'a-long-enough-control-token' });
    const a = await viewer();
    const id = helloOf(a).id;
    const calls: [string, string][] = [
      ['GET', '/api/clients'],
      ['POST', '/api/messages'],
      ['POST', `/api/clients/${id}/messages`],
      ['DELETE', `/api/clients/${id}`],
    ];
    for (const [method, path] of calls) {
      const res = await fetch(`${server.baseUrl}${path}`, {
        method,
        headers: { 'content-type': 'application/json', authorization: 'Bearer wrong-token-wrong-token' },
        body: method === 'POST' ? JSON.stringify({ text: 'hi' }) : undefined,
      });
      expect(res.status, `${method} ${path}`).toBe(401);
    }
    const ok = await fetch(`${server.baseUrl}/api/clients`, { headers: { authorization: 'Bearer a-long-enough-control-token' } });
    expect(ok.status).toBe(200);
    expect(a.count('notice')).toBe(0);
    expect(a.count('disconnect')).toBe(0);
    await server.close();

    server = await startTestServer();
    const b = await viewer();
    const forbidden = await post(server, '/api/messages', { text: 'from a web page' }, { origin: 'http://evil.example' });
    expect(forbidden.status).toBe(403);
    const drop = await fetch(`${server.baseUrl}/api/clients/${helloOf(b).id}`, { method: 'DELETE', headers: { 'sec-fetch-site': 'cross-site' } });
    expect(drop.status).toBe(403);
    await post(server, '/api/messages', { text: 'from the operator' });
    await b.waitFor((x) => x.count('notice') === 1);
    expect(b.ofType('notice')[0].text).toBe('from the operator');
  });

  it('viewers: one periodic message when the count changed, none while it stays the same', async () => {
    server = await startTestServer({ viewerCountIntervalMs: 20 });
    const a = await viewer();
    await a.waitFor((x) => x.ofType('viewers').some((m) => m.count === 1), 5000, 'viewers 1');
    const b = await viewer();
    await a.waitFor((x) => x.ofType('viewers').some((m) => m.count === 2), 5000, 'viewers 2 at A');
    await b.waitFor((x) => x.ofType('viewers').some((m) => m.count === 2), 5000, 'viewers 2 at B');
    const before = a.count('viewers');
    // Ten periods with no change: nothing more is sent.
    await new Promise((r) => setTimeout(r, 200));
    expect(a.count('viewers')).toBe(before);
    b.close();
    await a.waitFor((x) => x.ofType('viewers').at(-1)?.count === 1, 5000, 'viewers back to 1');
    expect(a.ofType('viewers').map((m) => m.count)).toEqual([1, 2, 1]);
  });

  it('a client that floods is disconnected; a client over the rate only loses the excess; the others are served', async () => {
    server = await startTestServer();
    const sessions = server.app.get(ViewerSessions);
    const events: ViewerEvent[] = [];
    const sub = sessions.events.subscribe((e) => events.push(e));
    const calm = await viewer();
    const bursty = await viewer();
    const flooder = await viewer();
    const burstyId = helloOf(bursty).id;
    const flooderId = helloOf(flooder).id;

    for (let i = 0; i < 30; i++) {
      bursty.socket.send(JSON.stringify({ type: 'tap', i }));
    }
    for (let i = 0; i < 2000; i++) {
      flooder.socket.send(JSON.stringify({ type: 'spam', i }));
    }
    await flooder.closed;
    await post(server, '/api/messages', { text: 'after the flood' });
    await calm.waitFor((x) => x.count('notice') === 1, 5000, 'notice to the calm viewer');
    await bursty.waitFor((x) => x.count('notice') === 1, 5000, 'notice to the bursty viewer');
    expect(bursty.socket.readyState).toBe(bursty.socket.OPEN);
    const fromBursty = events.filter((e) => e.type === 'viewer.message' && e.viewer.id === burstyId);
    // The bucket's burst passes, the rest of a 30-frame burst is dropped.
    expect(fromBursty.length).toBeGreaterThanOrEqual(10);
    expect(fromBursty.length).toBeLessThan(15);
    const fromFlooder = events.filter((e) => e.type === 'viewer.message' && e.viewer.id === flooderId);
    expect(fromFlooder.length).toBeLessThan(15);
    await waitUntil(() => events.some((e) => e.type === 'viewer.disconnected' && e.viewer.id === flooderId));
    expect(sessions.list().map((v) => v.id)).not.toContain(flooderId);
    sub.unsubscribe();
  });
});

describe('ViewerSessions from an embedding app (test/example)', () => {
  let app: INestApplication | undefined;

  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('sees connected, message, disconnected and server.stopped; messages reach no other client', async () => {
    const temp = await makeTempFolder();
    app = await NestFactory.create(
      ExampleStackerModule.register({ listen: true, port: 0, host: '127.0.0.1', workFolder: temp.path, printQrCode: false, disconnectGraceMs: 50 }),
      { logger: false, abortOnError: false },
    );
    app.useWebSocketAdapter(new ViewerWsAdapter(app));
    await app.init();
    const port = app.get(ServerLifecycle).port;
    const audience = app.get(ExampleAudience);
    const url = `ws://127.0.0.1:${port}/ws`;
    const asker = await connected(url);
    const other = await connected(url);
    await app.get(ExampleStacker).onStacked(await makeJpeg(), 30);

    // Not a message: ignored without an event.
    asker.socket.send('not json');
    asker.socket.send('[1,2]');
    asker.socket.send(JSON.stringify({ type: 7 }));
    asker.socket.send(JSON.stringify({ kind: 'no type' }));
    asker.socket.send(Buffer.from('{"type":"binary"}'), { binary: true });
    asker.socket.send(JSON.stringify({ type: 'how_many_frames', detail: { a: 1 } }));
    await asker.waitFor((c) => c.count('notice') === 1, 5000, 'the example app answers');
    expect(asker.ofType('notice')[0].text).toBe('1 frames stacked so far');

    const messages = audience.seen.filter((e) => e.type === 'viewer.message');
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({ viewer: { id: helloOf(asker).id }, message: { type: 'how_many_frames', detail: { a: 1 } } });
    const connectedIds = audience.seen.filter((e) => e.type === 'viewer.connected').map((e) => (e.type === 'viewer.connected' ? e.viewer.id : ''));
    expect(connectedIds).toEqual([helloOf(asker).id, helloOf(other).id]);
    // Nothing the asker sent, nor the answer to it, reached the other viewer.
    expect(other.messages.map((m) => (m as { type: string }).type)).toEqual(['hello', 'new_image']);

    other.close();
    await waitUntil(() => audience.seen.some((e) => e.type === 'viewer.disconnected' && e.viewer.id === helloOf(other).id));

    const stop = await fetch(`http://127.0.0.1:${port}/api/server/stop`, { method: 'POST' });
    expect(stop.status).toBe(200);
    const stopped = audience.seen.find((e) => e.type === 'server.stopped');
    expect(stopped).toMatchObject({ type: 'server.stopped', report: { clients: 1 } });
    await waitUntil(() => audience.seen.filter((e) => e.type === 'viewer.disconnected').length === 2);
    await app.close();
    app = undefined;
    await temp.remove();
  });
});

/** Polls a condition on short real timers, failing after `timeoutMs`. */
async function waitUntil(condition: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) {
      throw new Error(`condition not met within ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}
