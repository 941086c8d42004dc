import 'reflect-metadata';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ScopesService } from '../../src/modules/scopes/scopes.service.js';
import { alsPage } from '../fixtures/als/als-page.js';
import { makeJpeg } from '../helpers/images.js';
import { makeTempFolder } from '../helpers/temp-folder.js';
import type { ScopeSummary } from '../../src/shared/scope-hooks/scope-hooks.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { RecordingClient } from '../helpers/ws-client.js';

const CONTROL = 'the-control-token-0123456789';
const ALPHA_TOKEN = 'token-of-scope-alpha-012345';
const BETA_TOKEN = 'token-of-scope-beta-0123456';

function put(server: TestServer, path: string, body: Buffer, token?: string, type = 'image/jpeg'): Promise<Response> {
  return fetch(`${server.baseUrl}${path}`, {
    method: 'PUT',
    headers: { 'content-type': type, ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
    body: new Uint8Array(body),
  });
}

function send(server: TestServer, method: string, path: string, body?: unknown, token?: string): Promise<Response> {
  return fetch(`${server.baseUrl}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function json<T = Record<string, unknown>>(response: Response): Promise<T> {
  return (await response.json()) as T;
}

async function bytes(server: TestServer, path: string): Promise<Buffer> {
  const res = await fetch(`${server.baseUrl}${path}`);
  expect(res.status, path).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

async function scopes(server: TestServer): Promise<ScopeSummary[]> {
  return (await json<{ scopes: ScopeSummary[] }>(await fetch(`${server.baseUrl}/api/scopes`))).scopes;
}

async function viewer(url: string): Promise<RecordingClient> {
  const client = await RecordingClient.connect(url);
  await client.waitFor((c) => c.count('hello') === 1, 5000, 'hello');
  return client;
}

const red = (): Promise<Buffer> => makeJpeg({ color: { r: 220, g: 10, b: 10 } });
const blue = (): Promise<Buffer> => makeJpeg({ color: { r: 10, g: 10, b: 220 } });

describe('scopes: several telescopes on one service', () => {
  let server: TestServer | undefined;
  const clients: RecordingClient[] = [];

  afterEach(async () => {
    clients.splice(0).forEach((c) => c.close());
    await server?.close();
    server = undefined;
  });

  function wsOf(s: TestServer, id: string): string {
    return s.wsUrl.replace(/\/ws$/, `/s/${id}/ws`);
  }

  it('two scopes published concurrently never leak into each other: files, ws messages, versions, history', async () => {
    server = await startTestServer({ controlToken: CONTROL });
    const s = server;
    const [r, b] = await Promise.all([red(), blue()]);
    // The scopes exist from their first publish.
    const first = await Promise.all([put(s, '/s/alpha/api/image', r, CONTROL), put(s, '/s/beta/api/image', b, CONTROL)]);
    expect(first.map((x) => x.status)).toEqual([200, 200]);
    const alpha = await viewer(wsOf(s, 'alpha'));
    const beta = await viewer(wsOf(s, 'beta'));
    const main = await viewer(s.wsUrl);
    clients.push(alpha, beta, main);
    for (let i = 0; i < 3; i++) {
      const answers = await Promise.all([put(s, '/s/alpha/api/image', r, CONTROL), put(s, '/s/beta/api/image', b, CONTROL)]);
      expect(answers.map((x) => x.status)).toEqual([200, 200]);
    }
    await alpha.waitFor((c) => c.count('new_image') === 3, 5000, 'alpha new_image');
    await beta.waitFor((c) => c.count('new_image') === 3, 5000, 'beta new_image');
    // Each scope numbers its own versions from 1; main saw nothing.
    expect(alpha.ofType('new_image').map((m) => m.version)).toEqual([2, 3, 4]);
    expect(beta.ofType('new_image').map((m) => m.version)).toEqual([2, 3, 4]);
    expect(main.count('new_image')).toBe(0);
    expect((await bytes(s, '/s/alpha/web_image.jpg')).equals(r)).toBe(true);
    expect((await bytes(s, '/s/beta/web_image.jpg')).equals(b)).toBe(true);
    expect((await readFile(join(s.webFolder, 's', 'alpha', 'web_image.jpg'))).equals(r)).toBe(true);
    expect((await readFile(join(s.webFolder, 's', 'beta', 'web_image.jpg'))).equals(b)).toBe(true);
    expect((await readdir(join(s.webFolder, 's', 'alpha', 'v'))).filter((n) => /^\d+$/.test(n)).sort()).toEqual(['1', '2', '3', '4']);
    expect((await json(await fetch(`${s.baseUrl}/s/beta/data.json`))).VERSION).toBe(4);
    expect((await json(await fetch(`${s.baseUrl}/status`))).version).toBeNull();
    // Each scope's history is its own four frames, previews under its own prefix.
    type History = { frames: { version: number; preview: string }[] };
    const alphaHistory = await json<History>(await fetch(`${s.baseUrl}/s/alpha/api/history`));
    const betaHistory = await json<History>(await fetch(`${s.baseUrl}/s/beta/api/history`));
    expect(alphaHistory.frames.map((f) => f.version)).toEqual([1, 2, 3, 4]);
    expect(betaHistory.frames.map((f) => f.version)).toEqual([1, 2, 3, 4]);
    expect(alphaHistory.frames[0].preview).toBe('/s/alpha/h/1.jpg');
    expect((await bytes(s, '/s/alpha/h/1.jpg')).length).toBeGreaterThan(0);
    expect((await json<History>(await fetch(`${s.baseUrl}/api/history`))).frames).toEqual([]);
    // The list: main first, then by id, with a thumbnail of each version that exists.
    const list = await scopes(s);
    expect(list.map((x) => [x.id, x.version, x.viewers])).toEqual([['main', null, 1], ['alpha', 4, 1], ['beta', 4, 1]]);
    expect(list[0].thumbnail).toBeNull();
    expect(list[1].thumbnail).toMatch(/^\/s\/alpha\/v\/4\/image_files\/\d+\/0_0\.jpeg$/);
    const thumb = await fetch(`${s.baseUrl}${list[1].thumbnail ?? ''}`);
    expect(thumb.status).toBe(200);
    expect(thumb.headers.get('content-type')).toBe('image/jpeg');
    // /status lists them too; main's own fields are as before.
    const status = await json<{ scopes: ScopeSummary[]; version: null }>(await fetch(`${s.baseUrl}/status`));
    expect(status.scopes.map((x) => x.id)).toEqual(['main', 'alpha', 'beta']);
    const metrics = await (await send(s, 'GET', '/metrics', undefined, CONTROL)).text();
    expect(metrics).toMatch(/^stackcast_scopes 3$/m);
    expect(metrics).toMatch(/^stackcast_scope_viewers\{scope="alpha"\} 1$/m);
    expect(metrics).toMatch(/^stackcast_viewers_connected 1$/m);
  });

  it('/s/main/ is the root: the same files, the same /ws; /s/<id> redirects; bad and unknown ids say so', async () => {
    server = await startTestServer();
    const s = server;
    const main = await viewer(wsOf(s, 'main'));
    clients.push(main);
    expect((await put(s, '/s/main/api/image', await red())).status).toBe(200);
    await main.waitFor((c) => c.count('new_image') === 1, 5000, 'new_image on /s/main/ws');
    expect((await bytes(s, '/s/main/web_image.jpg')).equals(await bytes(s, '/web_image.jpg'))).toBe(true);
    expect((await bytes(s, '/s/main/data.json')).equals(await bytes(s, '/data.json'))).toBe(true);
    expect((await bytes(s, '/s/main/')).equals(await bytes(s, '/'))).toBe(true);
    const redirect = await fetch(`${s.baseUrl}/s/main`, { redirect: 'manual' });
    expect(redirect.status).toBe(301);
    expect(redirect.headers.get('location')).toBe('/s/main/');
    const bad = await fetch(`${s.baseUrl}/s/Bad_Id/web_image.jpg`);
    expect(bad.status).toBe(400);
    expect((await json(bad)).message).toContain('[a-z0-9][a-z0-9-]{0,31}');
    const unknown = await fetch(`${s.baseUrl}/s/nowhere/web_image.jpg`);
    expect(unknown.status).toBe(404);
    expect((await json(unknown)).message).toContain('"nowhere"');
    expect(existsSync(join(s.webFolder, 's', 'nowhere'))).toBe(false);
    // A scope's viewer page is served under its prefix, with its relative links.
    expect((await put(s, '/s/gamma/api/image', await blue())).status).toBe(200);
    const page = await fetch(`${s.baseUrl}/s/gamma/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('viewer.js');
  });

  it('a scope token publishes into and controls its own scope only: 403 on another scope and on main; CONTROL_TOKEN everywhere', async () => {
    server = await startTestServer({ controlToken: CONTROL, scopeTokens: { alpha: ALPHA_TOKEN, beta: BETA_TOKEN } });
    const s = server;
    const jpeg = await red();
    expect((await put(s, '/s/alpha/api/image', jpeg, ALPHA_TOKEN)).status).toBe(200);
    const onBeta = await put(s, '/s/beta/api/image', jpeg, ALPHA_TOKEN);
    expect(onBeta.status).toBe(403);
    expect((await json(onBeta)).message).toContain('"alpha"');
    expect(existsSync(join(s.webFolder, 's', 'beta'))).toBe(false);
    expect((await put(s, '/api/image', jpeg, ALPHA_TOKEN)).status).toBe(403);
    expect((await put(s, '/s/main/api/image', jpeg, ALPHA_TOKEN)).status).toBe(403);
    expect((await put(s, '/s/alpha/api/image', jpeg)).status).toBe(401);
    expect((await put(s, '/s/alpha/api/image', jpeg, 'a-wrong-token-0123456789')).status).toBe(401);
    // Control routes of its scope: title and object, notices.
    const set = await send(s, 'POST', '/s/alpha/api/scope', { title: 'Dobson 300', object: 'M 42' }, ALPHA_TOKEN);
    expect(set.status).toBe(200);
    expect(await json(set)).toEqual({ id: 'alpha', title: 'Dobson 300', object: 'M 42' });
    expect((await send(s, 'POST', '/s/alpha/api/messages', { text: 'clouds' }, ALPHA_TOKEN)).status).toBeLessThan(300);
    expect((await send(s, 'POST', '/s/main/api/scope', { title: 'x' }, ALPHA_TOKEN)).status).toBe(403);
    expect((await send(s, 'POST', '/api/messages', { text: 'x' }, ALPHA_TOKEN)).status).toBe(403);
    // The beta token cannot touch alpha; CONTROL_TOKEN can do everything.
    expect((await send(s, 'POST', '/s/alpha/api/scope', { title: 'taken' }, BETA_TOKEN)).status).toBe(403);
    expect((await send(s, 'DELETE', '/s/alpha', undefined, BETA_TOKEN)).status).toBe(403);
    expect((await put(s, '/s/beta/api/image', jpeg, CONTROL)).status).toBe(200);
    expect((await send(s, 'POST', '/s/main/api/scope', { title: 'The club refractor' }, CONTROL)).status).toBe(200);
    const list = await scopes(s);
    expect(list.map((x) => [x.id, x.title, x.object])).toEqual([
      ['main', 'The club refractor', null],
      ['alpha', 'Dobson 300', 'M 42'],
      ['beta', 'beta', null],
    ]);
    // Bad bodies name the rule.
    const long = await send(s, 'POST', '/s/alpha/api/scope', { title: 'x'.repeat(81) }, CONTROL);
    expect(long.status).toBe(400);
    expect((await json(long)).message).toContain('1 to 80 characters');
    expect((await send(s, 'POST', '/s/alpha/api/scope', {}, CONTROL)).status).toBe(400);
  });

  it('MAX_SCOPES: a publish that would create one more answers 409 and creates nothing, not even a folder', async () => {
    server = await startTestServer({ maxScopes: 2 });
    const s = server;
    const jpeg = await red();
    expect((await put(s, '/s/alpha/api/image', jpeg)).status).toBe(200);
    const refused = await put(s, '/s/beta/api/image', jpeg);
    expect(refused.status).toBe(409);
    expect((await json(refused)).message).toContain('MAX_SCOPES is 2');
    expect(existsSync(join(s.webFolder, 's', 'beta'))).toBe(false);
    expect((await scopes(s)).map((x) => x.id)).toEqual(['main', 'alpha']);
    // An existing scope still takes publishes; after a delete there is room again.
    expect((await put(s, '/s/alpha/api/image', jpeg)).status).toBe(200);
    expect((await send(s, 'DELETE', '/s/alpha')).status).toBe(200);
    expect((await put(s, '/s/beta/api/image', jpeg)).status).toBe(200);
  });

  it('concurrent first publishes to one id create one scope; a bad Content-Type creates none', async () => {
    server = await startTestServer();
    const s = server;
    const jpeg = await red();
    const type = await put(s, '/s/delta/api/image', jpeg, undefined, 'application/x-www-form-urlencoded');
    expect(type.status).toBe(415);
    expect(existsSync(join(s.webFolder, 's', 'delta'))).toBe(false);
    const answers = await Promise.all(Array.from({ length: 4 }, () => put(s, '/s/delta/api/image', jpeg)));
    expect(answers.map((x) => x.status)).toEqual([200, 200, 200, 200]);
    expect(s.app.get(ScopesService).ids().sort()).toEqual(['delta', 'main']);
    expect((await json(await fetch(`${s.baseUrl}/s/delta/data.json`))).VERSION).toBe(4);
  });

  it('deleting a scope disconnects only its viewers and removes its files; main cannot be deleted, an unknown one is 404', async () => {
    server = await startTestServer();
    const s = server;
    const jpeg = await red();
    await Promise.all([put(s, '/s/alpha/api/image', jpeg), put(s, '/s/beta/api/image', jpeg)]);
    const alphaViewers = [await viewer(wsOf(s, 'alpha')), await viewer(wsOf(s, 'alpha'))];
    const beta = await viewer(wsOf(s, 'beta'));
    const main = await viewer(s.wsUrl);
    clients.push(...alphaViewers, beta, main);
    const events: string[][] = [];
    const stop = s.app.get(ScopesService).watch((ids) => events.push(ids));
    const deleted = await send(s, 'DELETE', '/s/alpha');
    expect(deleted.status).toBe(200);
    for (const v of alphaViewers) {
      await v.closed;
      expect(v.count('disconnect')).toBe(1);
    }
    expect(existsSync(join(s.webFolder, 's', 'alpha'))).toBe(false);
    expect((await fetch(`${s.baseUrl}/s/alpha/web_image.jpg`)).status).toBe(404);
    expect(events).toContainEqual(['alpha']);
    stop();
    // The others stay open and still get their scope's news.
    expect((await put(s, '/s/beta/api/image', jpeg)).status).toBe(200);
    await beta.waitFor((c) => c.count('new_image') === 1, 5000, 'beta new_image after the delete');
    expect((await put(s, '/api/image', jpeg)).status).toBe(200);
    await main.waitFor((c) => c.count('new_image') === 1, 5000, 'main new_image after the delete');
    expect(beta.count('disconnect') + main.count('disconnect')).toBe(0);
    const mainDelete = await send(s, 'DELETE', '/s/main');
    expect(mainDelete.status).toBe(409);
    expect((await send(s, 'DELETE', '/s/nowhere')).status).toBe(404);
    expect((await scopes(s)).map((x) => x.id)).toEqual(['main', 'beta']);
  });

  it("main's STOP tells every scope's viewers and stops the scopes; START serves them again", async () => {
    server = await startTestServer();
    const s = server;
    const jpeg = await red();
    expect((await put(s, '/s/alpha/api/image', jpeg)).status).toBe(200);
    const alpha = await viewer(wsOf(s, 'alpha'));
    const main = await viewer(s.wsUrl);
    clients.push(alpha, main);
    expect((await send(s, 'POST', '/api/server/stop')).status).toBeLessThan(300);
    await alpha.closed;
    await main.closed;
    expect([alpha.count('disconnect'), main.count('disconnect')]).toEqual([1, 1]);
    expect((await fetch(`${s.baseUrl}/s/alpha/web_image.jpg`)).status).toBe(503);
    expect((await send(s, 'POST', '/api/server/start')).status).toBeLessThan(300);
    expect((await bytes(s, '/s/alpha/web_image.jpg')).equals(jpeg)).toBe(true);
    const again = await viewer(wsOf(s, 'alpha'));
    clients.push(again);
    expect((await put(s, '/s/alpha/api/image', jpeg)).status).toBe(200);
    await again.waitFor((c) => c.count('new_image') === 1, 5000, 'new_image after START');
  });

  it('a restart brings the scopes back with their images, versions and titles', async () => {
    const temp = await makeTempFolder('stackcast-scopes-');
    try {
      const workFolder = join(temp.path, 'work');
      server = await startTestServer({ workFolder });
      const [r, b] = await Promise.all([red(), blue()]);
      expect((await put(server, '/s/alpha/api/image', r)).status).toBe(200);
      expect((await put(server, '/s/beta/api/image', b)).status).toBe(200);
      expect((await send(server, 'POST', '/s/alpha/api/scope', { title: 'Newton 200' })).status).toBe(200);
      await server.close();
      server = await startTestServer({ workFolder });
      const list = await scopes(server);
      expect(list.map((x) => [x.id, x.title, x.version])).toEqual([['main', 'main', null], ['alpha', 'Newton 200', 1], ['beta', 'beta', 1]]);
      expect((await bytes(server, '/s/alpha/web_image.jpg')).equals(r)).toBe(true);
      expect((await bytes(server, '/s/beta/web_image.jpg')).equals(b)).toBe(true);
      // Numbering goes on from where it was.
      expect((await put(server, '/s/alpha/api/image', r)).status).toBe(200);
      expect((await json(await fetch(`${server.baseUrl}/s/alpha/data.json`))).VERSION).toBe(2);
    } finally {
      await server?.close();
      server = undefined;
      await temp.remove();
    }
  });

  it("ALS's page keeps working at the root with a second scope live and publishing", async () => {
    server = await startTestServer();
    const s = server;
    const page = Buffer.from(alsPage());
    await writeFile(join(s.webFolder, 'index.html'), page);
    const [r, b] = await Promise.all([red(), blue()]);
    expect((await put(s, '/api/image', r)).status).toBe(200);
    expect((await put(s, '/s/second/api/image', b)).status).toBe(200);
    const root = await fetch(`${s.baseUrl}/`);
    expect(root.status).toBe(200);
    expect(root.headers.get('content-security-policy')).toBeNull();
    expect(Buffer.from(await root.arrayBuffer()).equals(page)).toBe(true);
    // What its script asks for: main's image and data.json, untouched by the other scope.
    expect((await bytes(s, '/web_image.jpg')).equals(r)).toBe(true);
    const data = await json(await fetch(`${s.baseUrl}/data.json`));
    expect(data.VERSION).toBe(1);
    expect((await bytes(s, '/s/second/web_image.jpg')).equals(b)).toBe(true);
    // The second scope has stackcast's viewer, not ALS's page.
    expect((await bytes(s, '/s/second/')).equals(page)).toBe(false);
  });

  it('ImageNotifier.scope(id) publishes into that scope (created), main is the notifier itself; the lobby hears of it', async () => {
    server = await startTestServer({ maxScopes: 2 });
    const s = server;
    const heard = new Promise<void>((resolve) => {
      s.app.get(ScopesService).watch((ids) => ids.includes('gamma') && resolve());
    });
    expect(await s.notifier.scope('main')).toBe(s.notifier);
    const gamma = await s.notifier.scope('gamma');
    expect(gamma).not.toBe(s.notifier);
    const jpeg = await red();
    await gamma.publish(jpeg, { stackSize: 12, exposureSeconds: 360 });
    expect((await bytes(s, '/s/gamma/web_image.jpg')).equals(jpeg)).toBe(true);
    expect(await s.notifier.scope('gamma')).toBe(gamma);
    await expect(s.notifier.scope('other')).rejects.toThrow(/MAX_SCOPES is 2/);
    await expect(s.notifier.scope('Not valid')).rejects.toThrow(/invalid/);
    const [, listed] = await scopes(s);
    expect(listed).toMatchObject({ id: 'gamma', stackSize: 12, exposure: '0:06:00', version: 1 });
    expect(listed.updated).toMatch(/^\d{4}-\d\d-\d\dT/);
    await heard;
  });
});
