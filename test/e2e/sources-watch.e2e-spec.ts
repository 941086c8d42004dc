import { createHook } from 'node:async_hooks';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FolderWatchService } from '../../src/modules/sources/folder-watch.service.js';
import type { StatusBody } from '../../src/modules/status/status.controller.js';
import {
  closeTo,
  decodeStrictly,
  makeTexturedJpeg,
  makeTexturedPng,
  makeTexturedTiff,
  SimulatedStacker,
  waitUntil,
  type Rgb,
} from '../fixtures/sample-images.js';
import { makeTempFolder } from '../helpers/temp-folder.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { RecordingClient } from '../helpers/ws-client.js';

const SETTLE_MS = 300;
const POLL_MS = 100;
/** Long enough for a settle, a conversion and a slow CI machine; never waited out on success. */
const PUBLISH_TIMEOUT_MS = 10_000;

const COLOURS: Rgb[] = [
  { r: 200, g: 60, b: 40 },
  { r: 40, g: 190, b: 70 },
  { r: 50, g: 80, b: 210 },
  { r: 210, g: 200, b: 60 },
];

interface Published {
  colour: Rgb;
  width: number;
  stackSize: number;
  expo: string;
}

/** A source image of a fast writer: where it is, its bytes, its colour. */
interface Frame {
  path: string;
  bytes: Buffer;
  colour: Rgb;
}

/** What the watch handed to ImageNotifier.publish, and when (epoch ms). */
interface PublishCall {
  image: Buffer;
  at: number;
}

describe('folder watch (WATCH_PATH)', () => {
  let temp: { path: string; remove(): Promise<void> };
  let server: TestServer | undefined;
  let client: RecordingClient | undefined;
  const stackers: SimulatedStacker[] = [];

  beforeEach(async () => {
    temp = await makeTempFolder('stackcast-watch-');
  });

  afterEach(async () => {
    stackers.splice(0).forEach((s) => s.kill());
    client?.close();
    await server?.close();
    server = undefined;
    client = undefined;
    await temp.remove();
  });

  /**
   * With the watched folder there (WATCH_PATH, or a watched file's folder), once its first
   * listing is done (`watch.ready`): a file placed before that is one of the files found at
   * start, of which only the newest is news.
   */
  async function start(watchPath: string, extra: Parameters<typeof startTestServer>[0] = {}): Promise<{ server: TestServer; client: RecordingClient }> {
    const s = await startTestServer({ watchPath, watchSettleMs: SETTLE_MS, watchPollIntervalMs: POLL_MS, ...extra });
    server = s;
    client = await RecordingClient.connect(s.wsUrl);
    const folder = (await isFolder(watchPath)) ? watchPath : dirname(watchPath);
    if (await isFolder(folder)) {
      await waitUntil(async () => (await status(s)).watch?.ready === true, PUBLISH_TIMEOUT_MS, 'the first listing of the watched folder');
    }
    return { server: s, client };
  }

  async function isFolder(path: string): Promise<boolean> {
    return (await stat(path).catch(() => undefined))?.isDirectory() ?? false;
  }

  async function status(s: TestServer): Promise<StatusBody> {
    return (await (await fetch(`${s.baseUrl}/status`)).json()) as StatusBody;
  }

  /** What viewers get now: the served image (decoded strictly: no cut, no mix) and data.json. */
  async function published(s: TestServer): Promise<Published> {
    const jpeg = Buffer.from(await (await fetch(`${s.baseUrl}/web_image.jpg`)).arrayBuffer());
    const decoded = await decodeStrictly(jpeg);
    const data = (await (await fetch(`${s.baseUrl}/data.json`)).json()) as { STACK_SIZE: number; EXPO: string };
    return { colour: decoded.mean, width: decoded.width, stackSize: data.STACK_SIZE, expo: data.EXPO };
  }

  /** Source images in several formats, each of its own colour, written to a folder the watch does not see. */
  async function sources(): Promise<string[]> {
    const folder = join(temp.path, 'sources');
    await mkdir(folder, { recursive: true });
    const files: [string, Buffer][] = [
      ['a.tif', makeTexturedTiff({ colour: COLOURS[0], width: 512, height: 384, ifdFirst: true })],
      ['b.png', await makeTexturedPng({ colour: COLOURS[1], width: 512, height: 384, bits: 16 })],
      ['c.jpg', await makeTexturedJpeg({ colour: COLOURS[2], width: 512, height: 384 })],
    ];
    return Promise.all(
      files.map(async ([name, bytes]) => {
        await writeFile(join(folder, name), bytes);
        return join(folder, name);
      }),
    );
  }

  /** Puts an image in place the way a careful writer does: a hidden temp file, then a rename. */
  async function place(path: string, bytes: Buffer): Promise<void> {
    const partial = join(dirname(path), `.${basename(path)}.part`);
    await writeFile(partial, bytes);
    await rename(partial, path);
  }

  /** `count` small JPEGs, each of its own colour, in a folder the watch does not see. */
  async function frames(count: number): Promise<Frame[]> {
    const folder = join(temp.path, 'frames');
    await mkdir(folder, { recursive: true });
    return Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const colour = { r: 30 + 20 * i, g: 220 - 20 * i, b: 60 + 10 * i };
        const bytes = await makeTexturedJpeg({ colour, width: 256, height: 192 });
        const path = join(folder, `f${String(i + 1).padStart(2, '0')}.jpg`);
        await writeFile(path, bytes);
        return { path, bytes, colour };
      }),
    );
  }

  /** Records every image the watch publishes (through the real ImageNotifier) with its time. */
  function recordPublishes(s: TestServer): PublishCall[] {
    const calls: PublishCall[] = [];
    const publish = s.notifier.publish.bind(s.notifier);
    vi.spyOn(s.notifier, 'publish').mockImplementation((image, metrics, options) => {
      calls.push({ image: Buffer.from(image), at: Date.now() });
      return publish(image, metrics, options);
    });
    return calls;
  }

  /**
   * A writer that puts a new image in place every settle/2, 8 of them (~3.5 × settle):
   * at least one image must be published while it is still writing, each published image
   * is a whole frame (byte for byte, and decodes fully), none more than once, none older
   * after a newer one; the last frame is published once the writer stops.
   */
  async function followFastWriter(mode: 'chunks' | 'rename', watchPath: string, target: string): Promise<void> {
    const images = await frames(8);
    const { server: s, client: c } = await start(watchPath);
    const calls = recordPublishes(s);
    const stacker = new SimulatedStacker(
      mode,
      target,
      images.map((f) => f.path),
      { chunkBytes: 16_384, pauseMs: 5, periodMs: SETTLE_MS / 2 },
    );
    stackers.push(stacker);
    const lastByteAt = await stacker.wrote(images.length);
    expect(calls.length, 'images published while the writer was still going').toBeGreaterThan(0);
    expect(calls[0].at).toBeLessThan(lastByteAt);
    expect(await stacker.exited).toBe(0);
    const last = images[images.length - 1];
    await waitUntil(() => calls.some((call) => call.image.equals(last.bytes)), PUBLISH_TIMEOUT_MS, 'the last frame');

    const order = calls.map((call) => images.findIndex((f) => f.bytes.equals(call.image)));
    expect(order.every((i) => i >= 0), `whole frames only: ${JSON.stringify(order)}`).toBe(true);
    for (let k = 1; k < order.length; k++) {
      expect(order[k], `publish order ${JSON.stringify(order)}`).toBeGreaterThan(order[k - 1]);
    }
    for (const [k, call] of calls.entries()) {
      const decoded = await decodeStrictly(call.image);
      expect(closeTo(decoded.mean, images[order[k]].colour, 6)).toBe(true);
    }
    await c.waitFor((rc) => rc.count('new_image') === calls.length, PUBLISH_TIMEOUT_MS, 'a new_image per publish');
    const now = await published(s);
    expect(closeTo(now.colour, last.colour, 6), JSON.stringify(now.colour)).toBe(true);
    expect(now.stackSize).toBe(calls.length);
    expect((await status(s)).watch).toMatchObject({ imagesPublished: calls.length, filesSkipped: 0 });
  }

  /**
   * Drives a stepping stacker through its images: after each one's last byte, waits for
   * exactly one more new_image and checks what viewers get (and, if given, the file the
   * watch says it took). Then a last image placed by the test: once it is out, any
   * duplicate of the earlier ones would have been counted.
   */
  async function followStacker(
    s: TestServer,
    c: RecordingClient,
    stacker: SimulatedStacker,
    count: number,
    sentinelPath: string,
    lastFile?: string,
  ): Promise<void> {
    for (let i = 1; i <= count; i++) {
      await stacker.wrote(i);
      await c.waitFor((rc) => rc.count('new_image') >= i, PUBLISH_TIMEOUT_MS, `new_image for image ${i}`);
      const now = await published(s);
      expect(closeTo(now.colour, COLOURS[i - 1], 6), `image ${i}: ${JSON.stringify(now.colour)}`).toBe(true);
      expect(now.width).toBe(512);
      expect(now.stackSize).toBe(i);
      expect(c.count('new_image')).toBe(i);
      if (lastFile !== undefined) {
        expect((await status(s)).watch?.lastFile).toBe(lastFile);
      }
      stacker.next();
    }
    expect(await stacker.exited).toBe(0);
    await place(sentinelPath, await makeTexturedJpeg({ colour: COLOURS[3], width: 512, height: 384 }));
    await c.waitFor((rc) => rc.count('new_image') >= count + 1, PUBLISH_TIMEOUT_MS, 'new_image for the last image');
    const last = await published(s);
    expect(closeTo(last.colour, COLOURS[3], 6)).toBe(true);
    expect(last.stackSize).toBe(count + 1);
    expect(c.count('new_image')).toBe(count + 1);
    const watch = (await status(s)).watch!;
    expect(watch.imagesPublished).toBe(count + 1);
    expect(watch.filesSkipped).toBe(0);
  }

  it('publishes each image of a stacker that writes new files in chunks with pauses, once, never a partial one', async () => {
    const files = await sources();
    const folder = join(temp.path, 'out');
    await mkdir(folder);
    const { server: s, client: c } = await start(folder, { watchExposureSeconds: 30 });
    const stacker = new SimulatedStacker('chunks', folder, files, { chunkBytes: 16_384, pauseMs: 5, step: true });
    stackers.push(stacker);
    await stacker.wrote(1);
    await c.waitFor((rc) => rc.count('new_image') === 1, PUBLISH_TIMEOUT_MS, 'the first image');
    // Exposure: images published by the watch × WATCH_EXPOSURE.
    expect((await published(s)).expo).toBe('0:00:30');
    const report = await status(s);
    expect(report.source).toBe('watch');
    expect(report.watch).toMatchObject({ path: folder, target: 'folder', imagesPublished: 1, lastFile: '0001-a.tif', exposurePerImageSeconds: 30 });
    expect(report.lastImageAt).not.toBeNull();
    await followStacker(s, c, stacker, files.length, join(folder, 'zzzz-last.jpg'));
    expect((await published(s)).expo).toBe('0:02:00');
  });

  it('publishes each image of a stacker that writes a temp file then renames it, once', async () => {
    const files = await sources();
    const folder = join(temp.path, 'out');
    await mkdir(folder);
    const { server: s, client: c } = await start(folder);
    // The temp file, stack.tmp.tif, is left out by its name; each rename over stack.tif is a new file there.
    const stacker = new SimulatedStacker('rename', join(folder, 'stack.tif'), files, { chunkBytes: 16_384, pauseMs: 5, step: true });
    stackers.push(stacker);
    await followStacker(s, c, stacker, files.length, join(folder, 'stack.tif'), 'stack.tif');
  });

  it('leaves a .tmp temp file alone even when it sits longer than the settle time, and publishes it once renamed into place', async () => {
    const files = await sources();
    const folder = join(temp.path, 'out');
    await mkdir(folder);
    const { server: s, client: c } = await start(folder);
    // stack.tmp.tif is complete and still for 2 × settle before each rename.
    const stacker = new SimulatedStacker('rename', join(folder, 'stack.tif'), files, { chunkBytes: 16_384, pauseMs: 5, step: true, holdMs: SETTLE_MS * 2 });
    stackers.push(stacker);
    await followStacker(s, c, stacker, files.length, join(folder, 'stack.tif'), 'stack.tif');
  });

  it('publishes a temp file named like an image once it settles, and not again when it is renamed into place', async () => {
    const files = await sources();
    const folder = join(temp.path, 'out');
    await mkdir(folder);
    const { server: s, client: c } = await start(folder);
    // incoming.tif is not a temp name by the rules: it settles and is published; the rename
    // over stack.tif moves the same inode, size and mtime, so it is the same image.
    const stacker = new SimulatedStacker('rename', join(folder, 'stack.tif'), files, {
      chunkBytes: 16_384,
      pauseMs: 5,
      step: true,
      holdMs: SETTLE_MS * 2,
      tempName: 'incoming.tif',
    });
    stackers.push(stacker);
    await followStacker(s, c, stacker, files.length, join(folder, 'stack.tif'), 'incoming.tif');
    expect((await status(s)).watch?.lastFile).toBe('stack.tif');
  });

  it('keeps publishing while a stacker adds a new image more often than the settle time', async () => {
    const folder = join(temp.path, 'out');
    await mkdir(folder);
    await followFastWriter('chunks', folder, folder);
  });

  it('keeps publishing a single file (WATCH_PATH is a file) that a stacker renames over more often than the settle time', async () => {
    const folder = join(temp.path, 'out');
    await mkdir(folder);
    const live = join(folder, 'live.jpg');
    await followFastWriter('rename', live, live);
    expect((await status(server!)).watch).toMatchObject({ target: 'file', lastFile: 'live.jpg' });
  });

  it('follows a single file (WATCH_PATH is a file) that the stacker overwrites in place', async () => {
    const files = await sources();
    const folder = join(temp.path, 'out');
    await mkdir(folder);
    const live = join(folder, 'live.img');
    const { server: s, client: c } = await start(live);
    const stacker = new SimulatedStacker('overwrite', live, files, { chunkBytes: 16_384, pauseMs: 5, step: true });
    stackers.push(stacker);
    await followStacker(s, c, stacker, files.length, live);
    expect((await status(s)).watch).toMatchObject({ target: 'file', lastFile: 'live.img' });
  });

  it('never publishes a partial file, even from a writer that pauses longer than the settle time', async () => {
    const folder = join(temp.path, 'out');
    await mkdir(folder);
    const source = join(temp.path, 'slow.tif');
    // Directory first, pixels after: a cut copy would decode with blank strips if let through.
    await writeFile(source, makeTexturedTiff({ colour: COLOURS[0], width: 512, height: 384, ifdFirst: true }));
    const { server: s, client: c } = await start(folder);
    const stacker = new SimulatedStacker('chunks', folder, [source], { chunkBytes: 500_000, pauseMs: SETTLE_MS * 2 });
    stackers.push(stacker);
    await stacker.wrote(1);
    await c.waitFor((rc) => rc.count('new_image') === 1, PUBLISH_TIMEOUT_MS, 'the complete image');
    const now = await published(s);
    expect(closeTo(now.colour, COLOURS[0], 6), JSON.stringify(now.colour)).toBe(true);
    expect(now.stackSize).toBe(1);
    const watch = (await status(s)).watch!;
    // The partial file was seen settled, refused as truncated, and left for the next change.
    expect(watch.filesSkipped).toBeGreaterThanOrEqual(1);
    expect(watch.lastSkipped?.reason).toMatch(/truncated TIFF/);
    expect(watch.imagesPublished).toBe(1);
  });

  it('waits for a folder that does not exist yet', async () => {
    const folder = join(temp.path, 'not', 'yet');
    const { server: s, client: c } = await start(folder);
    // Nothing to list: not ready until the folder is there.
    expect((await status(s)).watch).toMatchObject({ target: 'missing', imagesPublished: 0, ready: false });
    await mkdir(folder, { recursive: true });
    await place(join(folder, 'first.png'), await makeTexturedPng({ colour: COLOURS[1] }));
    await c.waitFor((rc) => rc.count('new_image') === 1, PUBLISH_TIMEOUT_MS, 'an image in the late folder');
    expect(closeTo((await published(s)).colour, COLOURS[1], 6)).toBe(true);
    expect((await status(s)).watch).toMatchObject({ target: 'folder', ready: true });
  });

  it('publishes what is already there at start, and goes on after the folder is deleted and recreated', async () => {
    const folder = join(temp.path, 'out');
    await mkdir(folder);
    await writeFile(join(folder, 'old.jpg'), await makeTexturedJpeg({ colour: COLOURS[0] }));
    const { server: s, client: c } = await start(folder);
    await c.waitFor((rc) => rc.count('new_image') === 1, PUBLISH_TIMEOUT_MS, 'the image already there');
    expect(closeTo((await published(s)).colour, COLOURS[0], 6)).toBe(true);

    await rm(folder, { recursive: true });
    await waitUntil(async () => (await status(s)).watch?.target === 'missing', PUBLISH_TIMEOUT_MS, 'the watch to see the folder gone');
    await mkdir(folder);
    await place(join(folder, 'new.tif'), makeTexturedTiff({ colour: COLOURS[2] }));
    await c.waitFor((rc) => rc.count('new_image') === 2, PUBLISH_TIMEOUT_MS, 'an image in the recreated folder');
    const now = await published(s);
    expect(closeTo(now.colour, COLOURS[2], 6)).toBe(true);
    expect(now.stackSize).toBe(2);

    // And once more, now that the watch has followed the recreated folder.
    await place(join(folder, 'newer.png'), await makeTexturedPng({ colour: COLOURS[3] }));
    await c.waitFor((rc) => rc.count('new_image') === 3, PUBLISH_TIMEOUT_MS, 'a second image in the recreated folder');
    expect(closeTo((await published(s)).colour, COLOURS[3], 6)).toBe(true);
  });

  it('logs and skips a file it cannot decode, publishes the next good one, and never brings an older file back', async () => {
    const folder = join(temp.path, 'out');
    await mkdir(folder);
    const { server: s, client: c } = await start(folder);
    await place(join(folder, '01.png'), await makeTexturedPng({ colour: COLOURS[0] }));
    await c.waitFor((rc) => rc.count('new_image') === 1, PUBLISH_TIMEOUT_MS, 'the first image');

    await place(join(folder, '02.jpg'), Buffer.from('this is not a JPEG, whatever its name says'));
    await waitUntil(async () => (await status(s)).watch?.filesSkipped === 1, PUBLISH_TIMEOUT_MS, 'the damaged file to be skipped');
    const watch = (await status(s)).watch!;
    expect(watch.lastSkipped).toMatchObject({ file: '02.jpg' });
    expect(watch.lastSkipped?.reason).toMatch(/not a JPEG, PNG or TIFF/);
    expect(c.count('new_image')).toBe(1);
    expect(closeTo((await published(s)).colour, COLOURS[0], 6)).toBe(true);

    await place(join(folder, '03.tif'), makeTexturedTiff({ colour: COLOURS[1] }));
    await c.waitFor((rc) => rc.count('new_image') === 2, PUBLISH_TIMEOUT_MS, 'the next good image');
    expect(closeTo((await published(s)).colour, COLOURS[1], 6)).toBe(true);

    // Deleting the newest leaves 02 and 01 on top: older, so not published again.
    await rm(join(folder, '03.tif'));
    await place(join(folder, '04.jpg'), await makeTexturedJpeg({ colour: COLOURS[2] }));
    await c.waitFor((rc) => rc.count('new_image') === 3, PUBLISH_TIMEOUT_MS, 'the image after the deletion');
    const now = await published(s);
    expect(closeTo(now.colour, COLOURS[2], 6)).toBe(true);
    expect(now.stackSize).toBe(3);
    expect(c.count('new_image')).toBe(3);
  });

  it('can watch its own web folder without taking its own web_image.jpg for a new image', async () => {
    const folder = join(temp.path, 'shared');
    await mkdir(folder);
    await writeFile(join(folder, 'a.png'), await makeTexturedPng({ colour: COLOURS[0] }));
    // START writes web_image.jpg (the waiting image) here, newer than a.png: it must not count.
    const { server: s, client: c } = await start(folder, { workFolder: folder });
    expect(s.webFolder).toBe(folder);
    await c.waitFor((rc) => rc.count('new_image') === 1, PUBLISH_TIMEOUT_MS, 'the stacker image');
    const first = await published(s);
    expect(closeTo(first.colour, COLOURS[0], 6), JSON.stringify(first.colour)).toBe(true);
    expect(first.stackSize).toBe(1);
    await place(join(folder, 'b.jpg'), await makeTexturedJpeg({ colour: COLOURS[1] }));
    await c.waitFor((rc) => rc.count('new_image') === 2, PUBLISH_TIMEOUT_MS, 'the second stacker image');
    const second = await published(s);
    expect(closeTo(second.colour, COLOURS[1], 6)).toBe(true);
    expect(second.stackSize).toBe(2);
  });

  it('stops its timers and its OS watcher when the app closes', async () => {
    const folder = join(temp.path, 'out');
    await mkdir(folder);
    // Every timer the watch service creates, until it is cleared (or fired, for a timeout).
    const live = new Set<number>();
    const hook = createHook({
      init(id, type) {
        if (type === 'Timeout' && (new Error().stack ?? '').includes('folder-watch.service')) {
          live.add(id);
        }
      },
      destroy(id) {
        live.delete(id);
      },
    }).enable();
    try {
      const { server: s, client: c } = await start(folder);
      await place(join(folder, 'a.jpg'), await makeTexturedJpeg({ colour: COLOURS[0] }));
      await c.waitFor((rc) => rc.count('new_image') === 1, PUBLISH_TIMEOUT_MS, 'an image');
      expect((await status(s)).watch?.changeEvents).toBe(true);
      expect(live.size).toBeGreaterThan(0);
      const watch = s.app.get(FolderWatchService);
      c.close();
      await s.close();
      server = undefined;
      client = undefined;
      // Destroy hooks are delivered asynchronously.
      await waitUntil(() => live.size === 0, 2000, 'every watch timer to be cleared');
      expect(live.size).toBe(0);
      expect(watch.status().changeEvents).toBe(false);
    } finally {
      hook.disable();
    }
  });
});
