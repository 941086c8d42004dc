import { existsSync, watch } from 'node:fs';
import { readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeFits } from '../fixtures/fits-writer.mjs';
import { makeTexturedJpeg, waitUntil } from '../fixtures/sample-images.js';
import { makeJpeg } from '../helpers/images.js';
import { spawnService, type SpawnedService } from '../helpers/spawn-service.js';
import { makeTempFolder } from '../helpers/temp-folder.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

interface Frame {
  version: number;
  at: string;
  stackSize: number;
  exposure: number;
  object: string | null;
  preview: string;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) {
    await cleanups.pop()?.();
  }
});

async function server(options: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  const s = await startTestServer(options);
  cleanups.push(() => s.close());
  return s;
}

async function frames(s: { baseUrl: string }): Promise<Frame[]> {
  const res = await fetch(`${s.baseUrl}/api/history`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { frames: Frame[] }).frames;
}

async function put(s: { baseUrl: string }, body: Buffer, query = '', type = 'image/jpeg'): Promise<Response> {
  return fetch(`${s.baseUrl}/api/image${query}`, { method: 'PUT', body: new Uint8Array(body), headers: { 'Content-Type': type } });
}

async function dataJson(s: TestServer): Promise<Record<string, unknown>> {
  return (await (await fetch(`${s.baseUrl}/data.json`)).json()) as Record<string, unknown>;
}

/** Bytes of every file under `folder`, sub-folders included. */
async function folderBytes(folder: string): Promise<number> {
  let sum = 0;
  for (const entry of await readdir(folder, { withFileTypes: true })) {
    const path = join(folder, entry.name);
    sum += entry.isDirectory() ? await folderBytes(path) : (await stat(path)).size;
  }
  return sum;
}

const texture = (i: number): Promise<Buffer> => makeTexturedJpeg({ width: 320, height: 240, colour: { r: (i * 37) % 256, g: 90, b: 200 - i } });
/** Noise: a preview of ~40 KB, so a budget of a fraction of a MB fills in a few publishes. */
const noisy = (i: number): Promise<Buffer> =>
  sharp({ create: { width: 320, height: 240, channels: 3, background: { r: i, g: 0, b: 0 }, noise: { type: 'gaussian', mean: 128, sigma: 40 } } })
    .jpeg({ quality: 95 })
    .toBuffer();

describe('the night\'s history', () => {
  it('keeps a preview and the metrics of every version, immutable under /h/, and survives a restart', async () => {
    const temp = await makeTempFolder();
    cleanups.push(() => temp.remove());
    const workFolder = join(temp.path, 'work');
    const first = await server({ workFolder });
    for (let i = 1; i <= 3; i++) {
      expect((await put(first, await makeJpeg({ width: 2000, height: 1000 }), `?stackSize=${i}&exposure=${i * 30}`)).status).toBe(200);
    }
    const before = await frames(first);
    expect(before.map((f) => [f.version, f.stackSize, f.exposure, f.object, f.preview])).toEqual([
      [1, 1, 30, null, '/h/1.jpg'],
      [2, 2, 60, null, '/h/2.jpg'],
      [3, 3, 90, null, '/h/3.jpg'],
    ]);
    const preview = await fetch(`${first.baseUrl}/h/2.jpg`);
    expect(preview.status).toBe(200);
    expect(preview.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(preview.headers.get('content-type')).toBe('image/jpeg');
    const etag = preview.headers.get('etag');
    expect(etag).toMatch(/^"[0-9a-z-]+"$/);
    const meta = await sharp(Buffer.from(await preview.arrayBuffer())).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 1280, 640]);
    expect((await fetch(`${first.baseUrl}/h/2.jpg`, { headers: { 'If-None-Match': etag ?? '' } })).status).toBe(304);
    await first.close();

    const second = await server({ workFolder });
    expect(await frames(second)).toEqual(before);
    expect((await put(second, await makeJpeg(), '?stackSize=4')).status).toBe(200);
    expect((await frames(second)).map((f) => f.version)).toEqual([1, 2, 3, 4]);
  });

  it('makes each preview from the pixels the home levels are cut from: a JPEG\'s reduced decode, a FITS\'s shrunk home level', async () => {
    // Home levels up to 700 px: a 2400×1600 image's is level 10, 600×400 (from its JPEG, 1280×853).
    const s = await server({ homeLevelSize: 700 });
    const jpeg = await makeTexturedJpeg({ width: 2400, height: 1600, colour: { r: 120, g: 90, b: 60 } });
    const fits = encodeFits({ width: 2400, height: 1600, channels: 1, bitpix: 16, data: new Uint16Array(2400 * 1600).map((_, i) => 900 + ((i * 7919) % 300) + (i % 2400)) });
    expect((await put(s, jpeg)).status).toBe(200);
    expect((await put(s, fits, '', 'image/fits')).status).toBe(200);
    // A grey FITS's preview is grey too (one channel).
    for (const [version, channels] of [[1, 3], [2, 1]]) {
      const res = await fetch(`${s.baseUrl}/h/${version}.jpg`);
      expect(res.status).toBe(200);
      const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
      expect([meta.width, meta.height, meta.channels], `version ${version}`).toEqual([600, 400, channels]);
    }
  });

  it('stays within a tiny budget, thinning evenly and keeping the first and the latest; a thinned preview is a 404', async () => {
    const budgetMb = 0.3;
    const s = await server({ historyBudgetMb: budgetMb });
    for (let i = 1; i <= 24; i++) {
      expect((await put(s, await noisy(i), `?stackSize=${i}`)).status).toBe(200);
      expect(await folderBytes(join(s.webFolder, 'h'))).toBeLessThanOrEqual(budgetMb * 1024 * 1024);
      const versions = (await frames(s)).map((f) => f.version);
      expect(versions[0]).toBe(1);
      expect(versions.at(-1)).toBe(i);
    }
    const kept = (await frames(s)).map((f) => f.version);
    expect(kept.length).toBeGreaterThan(3);
    expect(kept.length).toBeLessThan(24);
    // Evenly: no gap between kept versions is more than twice another's (versions 1..24, first and latest pinned).
    const gaps = kept.slice(1).map((v, i) => v - kept[i]);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(2 * Math.min(...gaps) + 1);
    const thinned = [...Array(24).keys()].map((i) => i + 1).find((v) => !kept.includes(v));
    const gone = await fetch(`${s.baseUrl}/h/${thinned}.jpg`);
    expect(gone.status).toBe(404);
    expect(((await gone.json()) as { message: string }).message).toMatch(/thinned away/);
  });

  it('HISTORY off (budget 0): no frames, nothing under h/', async () => {
    const s = await server({ historyBudgetMb: 0 });
    expect((await put(s, await makeJpeg())).status).toBe(200);
    expect(await frames(s)).toEqual([]);
    expect((await fetch(`${s.baseUrl}/h/1.jpg`)).status).toBe(404);
    expect((await fetch(`${s.baseUrl}/api/history/timelapse.webp`)).status).toBe(404);
    expect(existsSync(join(s.webFolder, 'h'))).toBe(false);
  });

  it('timelapse.webp is an animated WebP with one frame per kept version, made once; bad parameters are 400s', async () => {
    const s = await server();
    for (let i = 1; i <= 5; i++) {
      expect((await put(s, await texture(i))).status).toBe(200);
    }
    const res = await fetch(`${s.baseUrl}/api/history/timelapse.webp?width=160`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/webp');
    const webp = Buffer.from(await res.arrayBuffer());
    const meta = await sharp(webp, { animated: true }).metadata();
    expect([meta.format, meta.pages, meta.width, meta.pageHeight]).toEqual(['webp', 5, 160, 120]);
    const again = await fetch(`${s.baseUrl}/api/history/timelapse.webp?width=160`);
    expect(again.headers.get('etag')).toBe(res.headers.get('etag'));
    const part = await fetch(`${s.baseUrl}/api/history/timelapse.webp?from=2&to=4`);
    expect(part.status).toBe(200);
    const partMeta = await sharp(Buffer.from(await part.arrayBuffer()), { animated: true }).metadata();
    expect([partMeta.pages, partMeta.width]).toEqual([3, 640]);
    for (const [query, message] of [
      ['width=2000', /width must be an integer number of pixels from 16 to 1280, got "2000"/],
      ['width=abc', /width must be/],
      ['from=x', /from must be a version number/],
      ['to=-3', /to must be a version number/],
      ['from=4&to=2', /from \(4\) must not be after to \(2\)/],
    ] as const) {
      const bad = await fetch(`${s.baseUrl}/api/history/timelapse.webp?${query}`);
      expect(bad.status, query).toBe(400);
      expect(((await bad.json()) as { message: string }).message).toMatch(message);
    }
    expect((await fetch(`${s.baseUrl}/api/history/timelapse.webp?from=50`)).status).toBe(404);
  });
});

/** `count` distinct 400×300 noise JPEGs (previews of ~50 KB): four noise fields, each image's first row set to its own value. */
async function noiseJpegs(count: number): Promise<Buffer[]> {
  const [width, height] = [400, 300];
  const fields = await Promise.all(
    [0, 1, 2, 3].map(() => sharp({ create: { width, height, channels: 3, background: '#000', noise: { type: 'gaussian', mean: 128, sigma: 40 } } }).raw().toBuffer()),
  );
  const encode = (i: number): Promise<Buffer> => {
    const pixels = Buffer.from(fields[i % 4]);
    pixels.fill(i % 256, 0, width * 3);
    pixels.fill(Math.floor(i / 256), width * 3, width * 6);
    return sharp(pixels, { raw: { width, height, channels: 3 } }).jpeg({ quality: 95 }).toBuffer();
  };
  const out: Buffer[] = [];
  for (let i = 0; i < count; i += 16) {
    out.push(...(await Promise.all([...Array(Math.min(16, count - i)).keys()].map((k) => encode(i + k)))));
  }
  return out;
}

/** The history folder's bytes (sub-folders included) and its previews (`<version>.jpg`), by version. */
async function historyOnDisk(folder: string): Promise<{ bytes: number; previews: number[] }> {
  const entries = await readdir(folder, { withFileTypes: true, recursive: true });
  const sizes = await Promise.all(entries.filter((e) => e.isFile()).map((e) => stat(join(e.parentPath, e.name)).then((st) => st.size)));
  const previews = entries.filter((e) => e.parentPath === folder && /^\d+\.jpg$/.test(e.name)).map((e) => Number.parseInt(e.name, 10));
  return { bytes: sizes.reduce((a, b) => a + b, 0), previews: previews.sort((a, b) => a - b) };
}

describe('the night\'s history in the built service (HISTORY_BUDGET_MB=5)', () => {
  it('history across 300 publishes with a 5 MB budget: never over, first and latest kept, evenly thinned, survives a kill -9', async () => {
    const budget = 5 * 1024 * 1024;
    const temp = await makeTempFolder();
    cleanups.push(() => temp.remove());
    const work = join(temp.path, 'work');
    const historyFolder = join(work, 'h');
    const env = { WORK_FOLDER: work, HISTORY_BUDGET_MB: '5' };
    let service: SpawnedService = await spawnService(env);
    cleanups.push(async () => void (await service.kill('SIGKILL')));
    const images = await noiseJpegs(302);

    /** On disk and in /api/history: within the budget, the same frames in both. */
    const checkBudget = async (): Promise<Frame[]> => {
      // The list first: after a restart, the service's first look at its history clears what a kill left.
      const listed = await frames(service);
      const disk = await historyOnDisk(historyFolder);
      expect(disk.bytes).toBeLessThanOrEqual(budget);
      expect(disk.previews).toEqual(listed.map((f) => f.version));
      return listed;
    };
    const publishes = 300;
    let thinnedFrom = 0;
    for (let i = 1; i <= publishes; i++) {
      expect((await put(service, images[i - 1], `?stackSize=${i}`)).status).toBe(200);
      const kept = (await checkBudget()).map((f) => f.version);
      expect([kept[0], kept.at(-1)]).toEqual([1, i]);
      if (kept.length < i) {
        thinnedFrom ||= i;
        // thin() drops the frame whose neighbours are closest: no gap exceeds twice the mean gap, and
        // the older half of the gaps (out of the newest frames' reach) stay within a factor 2 of each other.
        const gaps = kept.slice(1).map((v, k) => v - kept[k]);
        const mean = (i - 1) / gaps.length;
        expect(Math.max(...gaps), `gaps after publish ${i}: ${gaps.join(',')}`).toBeLessThanOrEqual(2 * mean);
        const older = gaps.slice(0, Math.floor(gaps.length / 2));
        expect(Math.max(...older), `gaps after publish ${i}: ${gaps.join(',')}`).toBeLessThanOrEqual(2 * Math.min(...older));
      }
    }
    const before = await frames(service);
    // The budget filled early and was thinned hard: at least every other frame gone.
    expect(thinnedFrom).toBeGreaterThan(50);
    expect(thinnedFrom).toBeLessThan(150);
    expect(before.length).toBeLessThan(publishes / 2);
    for (const v of [1, publishes]) {
      const res = await fetch(`${service.baseUrl}/h/${v}.jpg`);
      expect(res.status, `/h/${v}.jpg`).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/jpeg');
    }

    // kill -9 while a PUT is in flight, at its first write to the history's index: a full-size
    // preview, so that publish thins several frames (the densest, near the latest) to make room.
    const big = await sharp({ create: { width: 1600, height: 1200, channels: 3, background: '#000', noise: { type: 'gaussian', mean: 128, sigma: 40 } } })
      .jpeg({ quality: 90 })
      .toBuffer();
    const bigPreview = await sharp(big).resize(1280, 1280, { fit: 'inside' }).jpeg({ quality: 80 }).toBuffer();
    const sizes = new Map(await Promise.all(before.map(async (f) => [f.version, (await stat(join(historyFolder, `${f.version}.jpg`))).size] as const)));
    const indexWritten = new Promise<void>((resolve) => {
      const watcher = watch(historyFolder, (_, name) => {
        if (name === 'index.json') {
          watcher.close();
          resolve();
        }
      });
    });
    const inFlight = put(service, big, `?stackSize=${publishes + 1}`).then((r) => r.status, (err: Error) => err.message);
    await Promise.race([indexWritten, inFlight]);
    await service.kill('SIGKILL');
    const answer = await inFlight;

    service = await spawnService(env);
    const after = await checkBudget();
    const inFlightVersion = publishes + 1;
    for (const f of after) {
      expect(f.version === inFlightVersion || before.some((b) => JSON.stringify(b) === JSON.stringify(f)), `frame ${f.version} after the restart`).toBe(true);
    }
    const lost = before.filter((b) => !after.some((f) => f.version === b.version)).map((b) => b.version);
    // Where the kill fell varies with the load: the log says.
    console.log(`kill -9 with a PUT in flight (its answer: ${answer}): ${before.length} frames before, ${after.length} after, lost ${lost.join(',') || 'none'}`);
    // At most the frames thinned to make room for the one in flight; never the first, and the
    // history still ends with the latest frame (the one in flight, if it landed).
    const lostBytes = lost.reduce((sum, v) => sum + (sizes.get(v) ?? 0), 0);
    expect(lostBytes, `lost ${lost.join(',')}`).toBeLessThanOrEqual(bigPreview.length + Math.max(...sizes.values()));
    expect(after[0].version).toBe(1);
    expect(after.at(-1)?.version).toBeGreaterThanOrEqual(publishes);
    const statuses = await Promise.all(after.map(async (f) => `${f.preview} ${(await fetch(`${service.baseUrl}${f.preview}`)).status}`));
    expect(statuses).toEqual(after.map((f) => `${f.preview} 200`));

    expect((await put(service, images[publishes + 1], `?stackSize=${publishes + 2}`)).status).toBe(200);
    const latest = ((await (await fetch(`${service.baseUrl}/status`)).json()) as { version: number }).version;
    const appended = (await checkBudget()).map((f) => f.version);
    expect(latest).toBeGreaterThan(after.at(-1)?.version ?? 0);
    expect([appended[0], appended.at(-1)]).toEqual([1, latest]);
    expect((await fetch(`${service.baseUrl}/h/${latest}.jpg`)).status).toBe(200);
  // Measured 80-120 s with the load average at 15-25 on two cores (2026-12-07).
  }, 300_000);
});

describe('Save: /v/<version>/image.jpg?download=1', () => {
  it('is the full image, named after the object, the date and the stack size; 404 once the version is pruned', async () => {
    const s = await server({ keepVersions: 3 });
    const jpeg = await makeJpeg({ width: 300, height: 200 });
    expect((await put(s, jpeg, '?stackSize=7&object=M%2042')).status).toBe(200);
    const res = await fetch(`${s.baseUrl}/v/1/image.jpg?download=1`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/jpeg');
    expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const now = new Date();
    const date = `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, '0')}-${String(now.getDate()).padStart(2, '0')}`;
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="M_42-${date}-stack7.jpg"`);
    expect(Buffer.from(await res.arrayBuffer()).equals(jpeg)).toBe(true);
    // Without ?download=1: the same bytes, no attachment.
    expect((await fetch(`${s.baseUrl}/v/1/image.jpg`)).headers.get('content-disposition')).toBeNull();

    expect((await put(s, jpeg, '?stackSize=8&object=T%C3%AAte%20de%20Cheval%2F%22x%22')).status).toBe(200);
    const accented = (await fetch(`${s.baseUrl}/v/2/image.jpg?download=1`)).headers.get('content-disposition');
    expect(accented).toBe(`attachment; filename="Tete_de_Cheval_x-${date}-stack8.jpg"; filename*=UTF-8''T%C3%AAte_de_Cheval_x-${date}-stack8.jpg`);

    expect((await put(s, jpeg)).status).toBe(200);
    expect((await fetch(`${s.baseUrl}/v/3/image.jpg?download=1`)).headers.get('content-disposition')).toBe(`attachment; filename="stackcast-${date}-stack8.jpg"`);
    expect((await put(s, jpeg)).status).toBe(200);
    await waitUntil(async () => (await fetch(`${s.baseUrl}/v/1/image.jpg?download=1`)).status === 404, 5000, 'version 1 pruned');
  });
});

describe('what the visitor is looking at: OBJECT', () => {
  const fits = (cards: Record<string, string | number>): Buffer =>
    encodeFits({ width: 32, height: 24, channels: 1, bitpix: 16, data: new Uint16Array(32 * 24).map((_, i) => 2000 + (i % 50) * 10), cards });

  it('first match wins: the query, then the FITS header, then the target; in data.json, /status and the history', async () => {
    const s = await server();
    const header = { OBJECT: 'M 31', TELESCOP: 'RedCat 51', INSTRUME: 'ZWO ASI2600MC', FILTER: 'L-eNhance', 'DATE-OBS': '2026-12-06T22:14:03' };
    const target = (object: unknown): Promise<Response> =>
      fetch(`${s.baseUrl}/api/target`, { method: 'POST', body: JSON.stringify({ object }), headers: { 'Content-Type': 'application/json' } });
    expect((await target('NGC 7000')).status).toBe(200);

    expect((await put(s, fits(header), '?object=M%2042', 'image/fits')).status).toBe(200);
    expect(await dataJson(s)).toMatchObject({ OBJECT: 'M 42', TELESCOPE: 'RedCat 51', CAMERA: 'ZWO ASI2600MC', FILTER: 'L-eNhance', DATE_OBS: '2026-12-06T22:14:03' });

    expect((await put(s, fits(header), '', 'image/fits')).status).toBe(200);
    expect((await dataJson(s)).OBJECT).toBe('M 31');

    expect((await put(s, await makeJpeg())).status).toBe(200);
    const data = await dataJson(s);
    expect(data.OBJECT).toBe('NGC 7000');
    expect(data.TELESCOPE).toBeUndefined();
    expect(((await (await fetch(`${s.baseUrl}/status`)).json()) as { object: unknown }).object).toBe('NGC 7000');
    expect((await frames(s)).map((f) => f.object)).toEqual(['M 42', 'M 31', 'NGC 7000']);

    // A new target shows at once on an image that names none.
    expect((await target('M 45')).status).toBe(200);
    expect((await dataJson(s)).OBJECT).toBe('M 45');

    for (const bad of ['', 'x'.repeat(101), 'a\u0007b', 42]) {
      const res = await target(bad);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { message: string }).message).toMatch(/1 to 100 visible characters/);
    }
    const badQuery = await put(s, await makeJpeg(), `?object=${'y'.repeat(101)}`);
    expect(badQuery.status).toBe(400);
    expect(((await badQuery.json()) as { message: string }).message).toMatch(/object must be 1 to 100 visible characters/);
  });

  it('a watched N.I.N.A. file <Target>-<Filter>.fits names the object', async () => {
    const temp = await makeTempFolder();
    cleanups.push(() => temp.remove());
    const s = await server({ watchPath: temp.path, watchSettleMs: 50 });
    await writeFile(join(temp.path, 'Sh2-155-Ha.fits'), fits({ STACKCNT: 3 }));
    await waitUntil(async () => (await dataJson(s)).OBJECT === 'Sh2-155', 10_000, 'OBJECT from the file name');
    expect(await dataJson(s)).toMatchObject({ OBJECT: 'Sh2-155', FILTER: 'Ha', STACK_SIZE: 3 });
  });
});
