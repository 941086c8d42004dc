import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeJpeg } from '../helpers/images.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { expectUpgradeRefused, RecordingClient } from '../helpers/ws-client.js';

interface Listing {
  id: string;
  version: number | null;
  stackSize: number;
  thumbnail: string | null;
}

function lists(client: RecordingClient): Listing[][] {
  return client.ofType('scopes').map((m) => m.scopes as Listing[]);
}

async function publish(server: TestServer, path: string, stackSize: number): Promise<void> {
  const jpeg = await makeJpeg({ width: 640, height: 480, color: { r: 30 + stackSize, g: 60, b: 90 } });
  const res = await fetch(`${server.baseUrl}${path}?stackSize=${stackSize}&exposure=${stackSize * 10}`, {
    method: 'PUT',
    headers: { 'content-type': 'image/jpeg' },
    body: new Uint8Array(jpeg),
  });
  expect(res.status, await res.clone().text()).toBeLessThan(300);
}

describe('the lobby and the wall: pages and /scopes/ws', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it.each([
    ['/scopes', 'lobby.js'],
    ['/wall', 'wall.js'],
  ])('GET %s is stackcast\'s own page: HTML with the strict CSP and no inline script', async (path, script) => {
    const res = await fetch(`${server.baseUrl}${path}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await res.text();
    expect(html).toContain(`<script src="${script}" defer></script>`);
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    const js = await fetch(`${server.baseUrl}/${script}`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-security-policy')).toContain("script-src 'self'");
  });

  it('/scopes/ws sends the list on connect, and again after a publish with the new version and stack', async () => {
    const client = await RecordingClient.connect(`ws://127.0.0.1:${server.port}/scopes/ws`);
    try {
      await client.waitFor((c) => c.count('scopes') === 1, 5000, 'the list on connect');
      const first = lists(client)[0];
      expect(first.map((s) => s.id)).toContain('main');

      await publish(server, '/api/image', 7);
      await client.waitFor((c) => lists(c).some((l) => l.some((s) => s.id === 'main' && s.stackSize === 7)), 5000, 'main at stack 7');
      const main = lists(client).at(-1)!.find((s) => s.id === 'main')!;
      expect(main.version).toBeGreaterThan(0);
      expect(main.thumbnail).toMatch(/^\/s\/main\/v\/\d+\//);
      const tile = await fetch(`${server.baseUrl}${main.thumbnail!}`);
      expect(tile.status).toBe(200);
      const { width = 0, height = 0 } = await sharp(Buffer.from(await tile.arrayBuffer())).metadata();
      expect(Math.max(width, height)).toBeLessThanOrEqual(256);

      // A new scope's first publish: it joins the list, with its own version and stack.
      const before = client.count('scopes');
      await publish(server, '/s/alpha/api/image', 3);
      await client.waitFor((c) => lists(c).some((l) => l.some((s) => s.id === 'alpha' && s.stackSize === 3)), 5000, 'alpha at stack 3');
      const last = lists(client).at(-1)!;
      expect(last.map((s) => s.id)).toEqual(['main', 'alpha']);
      expect(last.find((s) => s.id === 'alpha')!.thumbnail).toMatch(/^\/s\/alpha\/v\/\d+\//);
      // Coalesced: the publish made one or two messages (the list, then its thumbnail or viewers), not one per file written.
      expect(client.count('scopes') - before).toBeLessThanOrEqual(2);
    } finally {
      client.close();
    }
  });

  it('the lobby, the wall and /scopes/ws are the main app\'s: not under a scope\'s /s/<id>/', async () => {
    await publish(server, '/s/beta/api/image', 1);
    expect((await fetch(`${server.baseUrl}/s/beta/scopes`)).status).toBe(404);
    expect((await fetch(`${server.baseUrl}/s/beta/wall`)).status).toBe(404);
    expect(await expectUpgradeRefused(`ws://127.0.0.1:${server.port}/s/beta/scopes/ws`)).toBe(404);
  });
});
