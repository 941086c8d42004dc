import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { mkdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { alsPage } from '../fixtures/als/als-page.js';
import { makeTempFolder } from '../helpers/temp-folder.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body as sent (compressed when Content-Encoding says so). */
  raw: Buffer;
  /** The body decoded according to its Content-Encoding. */
  body: Buffer;
}

/** A GET with exactly these headers (fetch would add and undo its own Accept-Encoding). */
function get(port: number, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: 'GET', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        const encoding = res.headers['content-encoding'];
        const body = encoding === 'br' ? brotliDecompressSync(raw) : encoding === 'gzip' ? gunzipSync(raw) : raw;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, raw, body });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Accept-Encoding headers and the Content-Encoding each must get; `{}` is a client that names none. */
const ENCODINGS: [string, Record<string, string>, string | undefined][] = [
  ['no Accept-Encoding', {}, undefined],
  ['identity', { 'Accept-Encoding': 'identity' }, undefined],
  ['gzip', { 'Accept-Encoding': 'gzip' }, 'gzip'],
  ['br', { 'Accept-Encoding': 'br' }, 'br'],
  ['a browser', { 'Accept-Encoding': 'gzip, deflate, br, zstd' }, 'br'],
];

/** Asserts `path` answers exactly `expected` in every encoding, with Vary: Accept-Encoding. */
async function expectServedAs(server: TestServer, path: string, expected: Buffer): Promise<Answer[]> {
  const answers: Answer[] = [];
  for (const [name, headers, encoding] of ENCODINGS) {
    const res = await get(server.port, path, headers);
    expect(res.status, `${path} (${name})`).toBe(200);
    expect(res.headers['content-encoding'], `${path} (${name})`).toBe(encoding);
    expect(res.headers.vary, `${path} (${name})`).toBe('Accept-Encoding');
    expect(res.body.equals(expected), `${path} (${name}): the bytes on disk`).toBe(true);
    answers.push(res);
  }
  return answers;
}

const MODES: [string, boolean][] = [
  ['the work folder (default)', false],
  ['WEB_DEDICATED (a web folder of its own)', true],
];

describe.each(MODES)('the web folder is the truth: %s', (_mode, dedicated) => {
  let server: TestServer;
  let temp: { path: string; remove(): Promise<void> };

  beforeAll(async () => {
    temp = await makeTempFolder('stackcast-web-');
  });
  afterEach(async () => {
    await server?.close();
  });
  afterAll(async () => {
    await temp.remove();
  });

  /** Starts a server on `<temp>/<name>` (its work folder, and a separate web folder when dedicated). */
  function start(name: string): Promise<TestServer> {
    const workFolder = join(temp.path, name, 'work');
    return startTestServer(dedicated ? { workFolder, webFolder: join(temp.path, name, 'web') } : { workFolder });
  }

  it("ALS's own index.html dropped in after START is served as it is, brotli, gzip and identity, without stackcast's CSP", async () => {
    server = await start('als');
    const ours = await get(server.port, '/', { 'Accept-Encoding': 'br' });
    expect(ours.headers['content-security-policy']).toContain("script-src 'self'");
    const page = Buffer.from(alsPage());
    await writeFile(join(server.webFolder, 'index.html'), page);
    for (const path of ['/', '/index.html']) {
      const answers = await expectServedAs(server, path, page);
      for (const res of answers) {
        expect(res.headers['content-security-policy'], path).toBeUndefined();
        expect(res.headers['content-type'], path).toMatch(/^text\/html/);
      }
      const [, identity, gz, br] = answers;
      expect(br.raw.length).toBeLessThan(identity.raw.length);
      expect(gz.raw.length).toBeLessThan(identity.raw.length);
      expect(new Set([identity.headers.etag, gz.headers.etag, br.headers.etag]).size).toBe(3);
    }
    // The image and data.json its script asks for are there too.
    expect((await get(server.port, '/web_image.jpg')).status).toBe(200);
    expect((await get(server.port, '/data.json')).status).toBe(200);
  });

  it('a file replaced after START is what the next request gets, compressed and not', async () => {
    server = await start('replace');
    const css = join(server.webFolder, 'viewer.css');
    const first = await readFile(css);
    const [, , , brFirst] = await expectServedAs(server, '/viewer.css', first);
    // Replaced by a rename (an editor's save), then rewritten in place with the same length (cp).
    const second = Buffer.from(`/* presentation night */\nbody { background: #200; }\n${'x'.repeat(200)}\n`);
    await writeFile(`${css}.new`, second);
    await rename(`${css}.new`, css);
    await expectServedAs(server, '/viewer.css', second);
    const third = Buffer.from(second.toString().replace('#200', '#020'));
    expect(third.length).toBe(second.length);
    await writeFile(css, third);
    await expectServedAs(server, '/viewer.css', third);
    // The old validator no longer matches.
    const revalidated = await get(server.port, '/viewer.css', { 'Accept-Encoding': 'br', 'If-None-Match': String(brFirst.headers.etag) });
    expect(revalidated.status).toBe(200);
    expect(revalidated.body.equals(third)).toBe(true);
    // A binary file too.
    const icon = Buffer.from('not really an icon, but the one on disk now');
    await writeFile(join(server.webFolder, 'favicon.ico'), icon);
    const favicon = await get(server.port, '/favicon.ico', { 'Accept-Encoding': 'br' });
    expect(favicon.status).toBe(200);
    expect(favicon.body.equals(icon)).toBe(true);
  });

  it("START keeps a page the user put there (STOP/START and a new process); deleting it brings stackcast's back", async () => {
    server = await start('restart');
    const web = server.webFolder;
    const ownPage = await readFile(join(web, 'index.html'));
    const page = Buffer.from(alsPage(2));
    await writeFile(join(web, 'index.html'), page);
    await server.lifecycle.stop();
    await server.lifecycle.start();
    expect((await readFile(join(web, 'index.html'))).equals(page)).toBe(true);
    await expectServedAs(server, '/', page);
    await server.close();

    server = await start('restart');
    expect((await readFile(join(web, 'index.html'))).equals(page)).toBe(true);
    const served = await expectServedAs(server, '/', page);
    expect(served[0].headers['content-security-policy']).toBeUndefined();

    await rm(join(web, 'index.html'));
    await server.lifecycle.stop();
    await server.lifecycle.start();
    expect((await readFile(join(web, 'index.html'))).equals(ownPage)).toBe(true);
    const back = await expectServedAs(server, '/', ownPage);
    expect(back[0].headers['content-security-policy']).toContain("script-src 'self'");
  });

  it("stackcast's own page and service worker carry the strict CSP; a user's page, even an edited copy of stackcast's, does not", async () => {
    server = await start('csp');
    for (const path of ['/', '/index.html', '/sw.js']) {
      const res = await get(server.port, path, { 'Accept-Encoding': 'gzip' });
      expect(res.status, path).toBe(200);
      expect(res.headers['content-security-policy'], path).toMatch(/default-src 'self'.*script-src 'self'/);
    }
    const own = await readFile(join(server.webFolder, 'index.html'), 'utf8');
    const edited = own.replace('</body>', '<script>document.title = "Star party";</script></body>');
    expect(edited).not.toBe(own);
    await writeFile(join(server.webFolder, 'index.html'), edited);
    for (const [, headers] of ENCODINGS) {
      const res = await get(server.port, '/', headers);
      expect(res.body.toString()).toBe(edited);
      expect(res.headers['content-security-policy']).toBeUndefined();
    }
    // Put back byte for byte, it is stackcast's page again.
    await writeFile(join(server.webFolder, 'index.html'), own);
    expect((await get(server.port, '/')).headers['content-security-policy']).toContain("script-src 'self'");
  });

  it('a missing file is a 404, also after a viewer file is deleted', async () => {
    server = await start('missing');
    await rm(join(server.webFolder, 'viewer.css'));
    for (const path of ['/viewer.css', '/nope.html', '/sub/', '/icons/']) {
      const res = await get(server.port, path, { 'Accept-Encoding': 'br' });
      expect(res.status, path).toBe(404);
      expect(res.body.toString(), path).not.toMatch(/<html/i);
    }
  });
});

describe('WEB_DEDICATED: every file of the web folder is served, never anything outside it', () => {
  let server: TestServer;
  let temp: { path: string; remove(): Promise<void> };

  beforeAll(async () => {
    temp = await makeTempFolder('stackcast-web-');
    await writeFile(join(temp.path, 'secret.txt'), 'TOP-SECRET-OUTSIDE');
    // The work folder inside the web folder: its files (the TLS key...) stay private.
    server = await startTestServer({ workFolder: join(temp.path, 'web', 'work'), webFolder: join(temp.path, 'web') });
    const web = server.webFolder;
    await mkdir(join(web, 'als', 'css'), { recursive: true });
    await writeFile(join(web, 'als', 'index.html'), alsPage());
    await writeFile(join(web, 'als', 'css', 'night.css'), 'body { color: red }');
    await writeFile(join(web, 'notes.txt'), 'the astronomer\'s notes');
    await writeFile(join(web, 'work', 'private.txt'), 'TOP-SECRET-WORK');
    await symlink(join(temp.path, 'secret.txt'), join(web, 'leak.html'));
    await symlink(temp.path, join(web, 'leakdir'));
    await writeFile(join(web, '.hidden.html'), 'TOP-SECRET-DOTFILE');
  });
  afterAll(async () => {
    await server.close();
    await temp.remove();
  });

  it("a user's own files and folders are served, a folder's index.html included", async () => {
    await expectServedAs(server, '/als/index.html', Buffer.from(alsPage()));
    await expectServedAs(server, '/als/', Buffer.from(alsPage()));
    await expectServedAs(server, '/als/css/night.css', Buffer.from('body { color: red }'));
    const notes = await get(server.port, '/notes.txt');
    expect(notes.status).toBe(200);
    expect(notes.body.toString()).toBe("the astronomer's notes");
  });

  it('never a dot-file, a symlink leading out, or the work folder inside it', async () => {
    for (const path of ['/leak.html', '/leakdir/secret.txt', '/.hidden.html', '/%2ehidden.html', '/work/private.txt', '/work/', '/als/../../secret.txt', '/als/..%2f..%2fsecret.txt']) {
      const res = await get(server.port, path, { 'Accept-Encoding': 'br' });
      expect([400, 403, 404], path).toContain(res.status);
      expect(res.body.toString(), path).not.toMatch(/TOP-SECRET/);
    }
    // stackcast's record of what it wrote is a dot-file beside the files: never served either.
    expect((await stat(join(server.webFolder, '.stackcast-viewer.json'))).isFile()).toBe(true);
    expect((await get(server.port, '/.stackcast-viewer.json')).status).toBe(404);
  });

  it('a file never shadows a route; while stopped a file is a 503 and a missing one still a 404', async () => {
    await writeFile(join(server.webFolder, 'status'), 'not the status');
    const status = await get(server.port, '/status');
    expect(status.status).toBe(200);
    expect(status.headers['content-type']).toMatch(/^application\/json/);
    expect(status.body.toString()).not.toContain('not the status');
    await server.lifecycle.stop();
    try {
      for (const path of ['/notes.txt', '/als/', '/index.html']) {
        expect((await get(server.port, path)).status, path).toBe(503);
      }
      expect((await get(server.port, '/nope.txt')).status).toBe(404);
    } finally {
      await server.lifecycle.start();
    }
    expect((await get(server.port, '/notes.txt')).status).toBe(200);
  });
});
