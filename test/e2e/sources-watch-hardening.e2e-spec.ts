import { execFileSync } from 'node:child_process';
import { mkdir, open, rename, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { StatusBody } from '../../src/modules/status/status.controller.js';
import { encodeFits } from '../fixtures/fits-writer.mjs';
import { closeTo, decodeStrictly, makeTexturedJpeg, makeTexturedPng, waitUntil, type Rgb } from '../fixtures/sample-images.js';
import { makeTempFolder } from '../helpers/temp-folder.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { RecordingClient } from '../helpers/ws-client.js';

const SETTLE_MS = 300;
const POLL_MS = 100;
const PUBLISH_TIMEOUT_MS = 10_000;
const HOUR_S = 3600;

const RED: Rgb = { r: 200, g: 60, b: 40 };
const GREEN: Rgb = { r: 40, g: 190, b: 70 };
const BLUE: Rgb = { r: 50, g: 80, b: 210 };

describe('folder watch: never stalls, every skip counted', () => {
  let temp: { path: string; remove(): Promise<void> };
  let folder: string;
  let server: TestServer | undefined;
  let client: RecordingClient | undefined;

  beforeEach(async () => {
    temp = await makeTempFolder('stackcast-watch-hard-');
    folder = join(temp.path, 'out');
    await mkdir(folder);
  });

  afterEach(async () => {
    client?.close();
    await server?.close();
    server = undefined;
    client = undefined;
    await temp.remove();
  });

  /**
   * Once its first listing is done (`watch.ready`): a file placed before that is found by the
   * listing, where only the newest file is news, so two files placed right after the start
   * could not both be counted.
   */
  async function start(watchPath = folder): Promise<{ s: TestServer; c: RecordingClient }> {
    const s = await startTestServer({ watchPath, watchSettleMs: SETTLE_MS, watchPollIntervalMs: POLL_MS });
    server = s;
    client = await RecordingClient.connect(s.wsUrl);
    await waitUntil(async () => (await watchStatus(s)).ready, PUBLISH_TIMEOUT_MS, 'the first listing of the watched folder');
    return { s, c: client };
  }

  async function watchStatus(s: TestServer): Promise<NonNullable<StatusBody['watch']>> {
    return (await (await fetch(`${s.baseUrl}/status`)).json() as StatusBody).watch!;
  }

  async function servedColour(s: TestServer): Promise<Rgb> {
    return (await decodeStrictly(Buffer.from(await (await fetch(`${s.baseUrl}/web_image.jpg`)).arrayBuffer()))).mean;
  }

  /** A whole file put in place with a rename, its mtime then set to `mtimeS` (epoch seconds). */
  async function place(name: string, bytes: Buffer, mtimeS?: number): Promise<void> {
    const partial = join(folder, `.${name}.part`);
    await writeFile(partial, bytes);
    if (mtimeS !== undefined) {
      await utimes(partial, mtimeS, mtimeS);
    }
    await rename(partial, join(folder, name));
  }

  it('publishes files that come after one dated a day in the future', async () => {
    const { s, c } = await start();
    const now = Date.now() / 1000;
    await place('future.jpg', await makeTexturedJpeg({ colour: RED }), now + 24 * HOUR_S);
    await c.waitFor((rc) => rc.count('new_image') === 1, PUBLISH_TIMEOUT_MS, 'the file from the future');
    await place('next.jpg', await makeTexturedJpeg({ colour: GREEN }));
    await c.waitFor((rc) => rc.count('new_image') === 2, PUBLISH_TIMEOUT_MS, 'the file after it');
    expect(closeTo(await servedColour(s), GREEN, 6)).toBe(true);
    await place('next2.png', await makeTexturedPng({ colour: BLUE }));
    await c.waitFor((rc) => rc.count('new_image') === 3, PUBLISH_TIMEOUT_MS, 'one more');
    expect(closeTo(await servedColour(s), BLUE, 6)).toBe(true);
    expect(await watchStatus(s)).toMatchObject({ imagesPublished: 3, filesSkipped: 0, lastFile: 'next2.png' });
  });

  it('publishes files dated an hour earlier than the last one (the clock stepped back)', async () => {
    const { s, c } = await start();
    const now = Date.now() / 1000;
    await place('a.jpg', await makeTexturedJpeg({ colour: RED }), now);
    await c.waitFor((rc) => rc.count('new_image') === 1, PUBLISH_TIMEOUT_MS, 'the first file');
    await place('b.jpg', await makeTexturedJpeg({ colour: GREEN }), now - HOUR_S);
    await c.waitFor((rc) => rc.count('new_image') === 2, PUBLISH_TIMEOUT_MS, 'the file dated an hour back');
    expect(closeTo(await servedColour(s), GREEN, 6)).toBe(true);
    // The same file rewritten in place, still dated in the past, is news too.
    const again = await open(join(folder, 'b.jpg'), 'w');
    await again.writeFile(await makeTexturedJpeg({ colour: BLUE }));
    await again.close();
    await utimes(join(folder, 'b.jpg'), now - 2 * HOUR_S, now - 2 * HOUR_S);
    await c.waitFor((rc) => rc.count('new_image') === 3, PUBLISH_TIMEOUT_MS, 'the rewrite dated two hours back');
    expect(closeTo(await servedColour(s), BLUE, 6)).toBe(true);
  });

  it('goes on past a symlink loop, a FIFO, a folder and a dangling link named like images, counting each', async () => {
    // Some there at start, some added while it runs.
    await symlink('loop-b.jpg', join(folder, 'loop-a.jpg'));
    await symlink('loop-a.jpg', join(folder, 'loop-b.jpg'));
    await symlink('.', join(folder, 'self'));
    execFileSync('mkfifo', [join(folder, 'pipe.png')]);
    const { s, c } = await start();
    await waitUntil(async () => (await watchStatus(s)).skippedBy.unreadable >= 3, PUBLISH_TIMEOUT_MS, 'the loop and the FIFO to be counted');
    await mkdir(join(folder, 'folder.tif'));
    await symlink('nowhere.jpg', join(folder, 'dangling.jpg'));
    await symlink('loop-d.jpg', join(folder, 'loop-c.jpg'));
    await symlink('loop-c.jpg', join(folder, 'loop-d.jpg'));
    await place('good.jpg', await makeTexturedJpeg({ colour: GREEN }));
    await c.waitFor((rc) => rc.count('new_image') === 1, PUBLISH_TIMEOUT_MS, 'the good image');
    expect(closeTo(await servedColour(s), GREEN, 6)).toBe(true);
    await waitUntil(async () => (await watchStatus(s)).skippedBy.unreadable >= 4, PUBLISH_TIMEOUT_MS, 'the folder named like an image to be counted');
    const watch = await watchStatus(s);
    expect(watch.imagesPublished).toBe(1);
    expect(watch.filesSkipped).toBe(Object.values(watch.skippedBy).reduce((a, b) => a + b, 0));
    expect(watch.skippedBy).toMatchObject({ damaged: 0, refused: 0 });
    expect(watch.lastSkipped?.kind).toBe('unreadable');
    // And it still follows the folder.
    await place('better.png', await makeTexturedPng({ colour: BLUE }));
    await c.waitFor((rc) => rc.count('new_image') === 2, PUBLISH_TIMEOUT_MS, 'the next image');
  });

  it('counts a damaged image and a refused format apart, and publishes the next good one', async () => {
    const { s, c } = await start();
    const jpeg = await makeTexturedJpeg({ colour: RED, width: 512, height: 384 });
    await place('cut.jpg', jpeg.subarray(0, jpeg.length >> 1));
    await place('other.png', Buffer.from('GIF89a: a format the service does not take'));
    await waitUntil(async () => (await watchStatus(s)).filesSkipped === 2, PUBLISH_TIMEOUT_MS, 'both files to be skipped');
    expect((await watchStatus(s)).skippedBy).toEqual({ damaged: 1, refused: 1, unreadable: 0, failed: 0 });
    await place('fine.jpg', await makeTexturedJpeg({ colour: GREEN }));
    await c.waitFor((rc) => rc.count('new_image') === 1, PUBLISH_TIMEOUT_MS, 'the good image');
    expect(await watchStatus(s)).toMatchObject({ imagesPublished: 1, filesSkipped: 2, lastFile: 'fine.jpg' });
  });

  it('publishes a file rewritten in place every 250 ms, faster than the settle time, at a bounded rate', async () => {
    const live = join(folder, 'live.jpg');
    const frames = await Promise.all(
      Array.from({ length: 12 }, (_, i) => makeTexturedJpeg({ colour: { r: 20 + 18 * i, g: 220 - 15 * i, b: 90 }, width: 512, height: 384 })),
    );
    const { s } = await start(live);
    const calls: Buffer[] = [];
    const publish = s.notifier.publish.bind(s.notifier);
    vi.spyOn(s.notifier, 'publish').mockImplementation(async (image, metrics, options) => {
      await publish(image, metrics, options);
      calls.push(Buffer.from(image));
    });
    const began = Date.now();
    for (const [i, frame] of frames.entries()) {
      // In place: truncate, then the bytes in two writes, as a stacker saving over its file.
      const file = await open(live, 'w');
      await file.write(frame.subarray(0, frame.length >> 1));
      await new Promise((resolve) => setTimeout(resolve, 5));
      await file.write(frame.subarray(frame.length >> 1));
      await file.close();
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, began + (i + 1) * 250 - Date.now())));
    }
    const writing = Date.now() - began;
    const whileWriting = calls.length;
    expect(whileWriting, 'publishes while the writer never let the file settle').toBeGreaterThanOrEqual(3);
    expect(whileWriting).toBeLessThanOrEqual(Math.ceil(writing / SETTLE_MS) + 1);
    await waitUntil(() => calls.some((c) => c.equals(frames[frames.length - 1])), PUBLISH_TIMEOUT_MS, 'the last frame once the writer stopped');
    const order = calls.map((call) => frames.findIndex((f) => f.equals(call)));
    expect(order.every((i) => i >= 0), `whole frames only: ${JSON.stringify(order)}`).toBe(true);
    for (let k = 1; k < order.length; k++) {
      expect(order[k], `order ${JSON.stringify(order)}`).toBeGreaterThan(order[k - 1]);
    }
    // Reads in the middle of a rewrite were tried again, never counted as skips.
    expect(await watchStatus(s)).toMatchObject({ imagesPublished: calls.length, filesSkipped: 0 });
  });

  it("in Siril's live-stacking folder, hands only the stack live_stack_00001.fit to the publish path, each rewrite once complete", async () => {
    const fits = (level: number): Buffer =>
      encodeFits({ width: 64, height: 48, channels: 1, bitpix: 16, data: Array.from({ length: 64 * 48 }, (_, i) => level + (i % 64)), cards: { STACKCNT: level } });
    const { s } = await start();
    const handed: Buffer[] = [];
    const publish = s.notifier.publish.bind(s.notifier);
    vi.spyOn(s.notifier, 'publish').mockImplementation((image, metrics, options) => {
      handed.push(Buffer.from(image));
      return publish(image, metrics, options);
    });
    const stack = join(folder, 'live_stack_00001.fit');
    const stacks = [fits(1000), fits(2000), fits(3000)];
    await writeFile(join(folder, 'live_stack.seq'), '#sequence\n');
    for (const [i, bytes] of stacks.entries()) {
      const n = String(i + 2).padStart(5, '0');
      await writeFile(join(folder, `live_stack_${n}.fit`), fits(10 + i));
      await writeFile(join(folder, `r_live_stack_${n}.fit`), fits(20 + i));
      // The stack rewritten in place, a cut copy first: it must never be handed on alone.
      const file = await open(stack, 'w');
      await file.write(bytes.subarray(0, 2880 + 100));
      await new Promise((resolve) => setTimeout(resolve, 20));
      await file.write(bytes.subarray(2880 + 100));
      await file.close();
      await waitUntil(() => handed.some((h) => h.equals(bytes)), PUBLISH_TIMEOUT_MS, `stack ${i + 1}`);
    }
    // Only whole stacks, in order: never the cut copy, never a frame. On a converter that does
    // not take FITS yet, each is refused (counted) once it settles; with FITS, published.
    const order = handed.map((h) => stacks.findIndex((b) => b.equals(h)));
    expect(order.every((k, n) => k >= 0 && (n === 0 || k >= order[n - 1])), JSON.stringify(order)).toBe(true);
    await waitUntil(async () => ((w) => w.imagesPublished + w.filesSkipped > 0)(await watchStatus(s)), PUBLISH_TIMEOUT_MS, 'the last stack accounted for');
    const watch = await watchStatus(s);
    expect(watch.skippedBy).toMatchObject({ damaged: 0, unreadable: 0 });
    expect(watch.lastFile ?? watch.lastSkipped?.file).toBe('live_stack_00001.fit');
  });
});

