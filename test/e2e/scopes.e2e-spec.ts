import 'reflect-metadata';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeJpeg } from '../helpers/images.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { RecordingClient } from '../helpers/ws-client.js';

const CONTROL = 'the-control-token-0123456789';

function put(server: TestServer, path: string, body: Buffer, token?: string): Promise<Response> {
  return fetch(`${server.baseUrl}${path}`, {
    method: 'PUT',
    headers: { 'content-type': 'image/jpeg', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
    body: new Uint8Array(body),
  });
}

async function json(response: Response): Promise<Record<string, unknown>> {
  return (await response.json()) as Record<string, unknown>;
}

async function viewer(url: string): Promise<RecordingClient> {
  const client = await RecordingClient.connect(url);
  await client.waitFor((c) => c.count('hello') === 1, 5000, 'hello');
  return client;
}

describe('scopes: several telescopes on one service', () => {
  let server: TestServer | undefined;
  const clients: RecordingClient[] = [];

  afterEach(async () => {
    clients.splice(0).forEach((c) => c.close());
    await server?.close();
    server = undefined;
  });

  it('two scopes published concurrently never leak into each other: files, ws messages, versions, history', async () => {
    server = await startTestServer({ controlToken: CONTROL });
    const base = server.baseUrl;
    // The scopes exist from their first publish; their viewers connect right after.
    const [red, blue] = await Promise.all([makeJpeg({ color: { r: 220, g: 10, b: 10 } }), makeJpeg({ color: { r: 10, g: 10, b: 220 } })]);
    const first = await Promise.all([put(server, '/s/alpha/api/image', red, CONTROL), put(server, '/s/beta/api/image', blue, CONTROL)]);
    expect(first.map((r) => r.status)).toEqual([200, 200]);
    const wsBase = server.wsUrl.replace(/\/ws$/, '');
    const alphaViewer = await viewer(`${wsBase}/s/alpha/ws`);
    const betaViewer = await viewer(`${wsBase}/s/beta/ws`);
    const mainViewer = await viewer(server.wsUrl);
    clients.push(alphaViewer, betaViewer, mainViewer);
    const rounds = 3;
    for (let i = 0; i < rounds; i++) {
      const answers = await Promise.all([put(server, '/s/alpha/api/image', red, CONTROL), put(server, '/s/beta/api/image', blue, CONTROL)]);
      expect(answers.map((r) => r.status)).toEqual([200, 200]);
    }
    await alphaViewer.waitFor((c) => c.count('new_image') === rounds, 5000, 'alpha new_image');
    await betaViewer.waitFor((c) => c.count('new_image') === rounds, 5000, 'beta new_image');
    // Each scope numbers its own versions from 1.
    expect(alphaViewer.ofType('new_image').map((m) => m.version)).toEqual([2, 3, 4]);
    expect(betaViewer.ofType('new_image').map((m) => m.version)).toEqual([2, 3, 4]);
    expect(mainViewer.count('new_image')).toBe(0);
    // Files: each scope's own, under web/s/<id>/, and its own image.
    const alphaImage = Buffer.from(await (await fetch(`${base}/s/alpha/web_image.jpg`)).arrayBuffer());
    const betaImage = Buffer.from(await (await fetch(`${base}/s/beta/web_image.jpg`)).arrayBuffer());
    expect(alphaImage.equals(red)).toBe(true);
    expect(betaImage.equals(blue)).toBe(true);
    expect(await readFile(join(server.webFolder, 's', 'alpha', 'web_image.jpg'))).toEqual(red);
    expect(await readFile(join(server.webFolder, 's', 'beta', 'web_image.jpg'))).toEqual(blue);
    expect((await readdir(join(server.webFolder, 's', 'alpha', 'v'))).filter((n) => /^\d+$/.test(n)).sort()).toEqual(['1', '2', '3', '4']);
    const alphaData = await json(await fetch(`${base}/s/alpha/data.json`));
    expect(alphaData.VERSION).toBe(4);
    // The main scope got nothing.
    expect((await json(await fetch(`${base}/status`))).version).toBeNull();
    // History, per scope.
    const alphaHistory = await json(await fetch(`${base}/s/alpha/api/history`));
    const betaHistory = await json(await fetch(`${base}/s/beta/api/history`));
    expect(JSON.stringify(alphaHistory)).not.toEqual('{}');
    expect(alphaHistory).not.toEqual(await json(await fetch(`${base}/api/history`)));
    void betaHistory;
    const list = await json(await fetch(`${base}/api/scopes`));
    expect((list.scopes as { id: string }[]).map((s) => s.id)).toEqual(['main', 'alpha', 'beta']);
  });
});
