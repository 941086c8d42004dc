import { Logger } from '@nestjs/common';
import type { Stats } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { resolveImageServerOptions } from '../../config/image-server-options.js';
import type { ImageNotifier } from '../image-notifier/image-notifier.service.js';
import { ImageRejectedError } from '../image-notifier/image-rejected.error.js';
import { FileWatcher } from './file-watcher.js';
import { FolderWatchService } from './folder-watch.service.js';

/** The watch, counting the image files it stats. */
class CountingWatch extends FolderWatchService {
  readonly statted: string[] = [];

  protected override statPath(path: string): Promise<Stats | undefined> {
    if (path.endsWith('.jpg')) {
      this.statted.push(basename(path));
    }
    return super.statPath(path);
  }
}

async function waitUntil(probe: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('FolderWatchService on a folder holding a night of frames', () => {
  let temp: string;
  let watch: CountingWatch | undefined;

  beforeAll(() => {
    Logger.overrideLogger(false);
  });

  beforeEach(async () => {
    temp = await mkdtemp(join(tmpdir(), 'stackcast-watch-unit-'));
  });

  afterEach(async () => {
    await watch?.stop();
    watch = undefined;
    await rm(temp, { recursive: true, force: true });
  });

  it('stats every file once, then only new names, the files settling and the newest few', async () => {
    const folder = join(temp, 'night');
    await mkdir(folder);
    const FRAMES = 2000;
    const base = Date.now() / 1000 - FRAMES;
    for (let i = 0; i < FRAMES; i++) {
      const path = join(folder, `f${String(i).padStart(4, '0')}.jpg`);
      await writeFile(path, `frame ${i}`);
      await utimes(path, base + i, base + i);
    }
    const published: string[] = [];
    const notifier = { publish: vi.fn((bytes: Buffer) => Promise.resolve(void published.push(bytes.toString()))) } as unknown as ImageNotifier;
    const options = resolveImageServerOptions({ watchPath: folder, workFolder: join(temp, 'work'), watchSettleMs: 50, watchPollIntervalMs: 1000 });
    watch = new CountingWatch(options, notifier, new FileWatcher());
    watch.start();
    await waitUntil(() => published.length === 1, 10_000, 'the newest frame');
    expect(published).toEqual([`frame ${FRAMES - 1}`]);
    // The first scan looks at every file, once.
    expect(new Set(watch.statted).size).toBe(FRAMES);
    const firstScans = watch.statted.length;
    expect(firstScans).toBeLessThan(FRAMES + 100);

    watch.statted.length = 0;
    await writeFile(join(folder, 'g.jpg'), 'frame g');
    await waitUntil(() => published.length === 2, 10_000, 'the new frame');
    expect(published[1]).toBe('frame g');
    expect(watch.statted).toContain('g.jpg');
    // A few per scan (the new name, the newest known), not the 2000 of the folder.
    expect(watch.statted.length).toBeLessThan(50);
    expect(watch.status()).toMatchObject({ target: 'folder', imagesPublished: 2, lastFile: 'g.jpg' });
  });

  it("counts a damaged file and a refused one that came after it when the settle timers fire early by the loop's clock", async () => {
    // Node starts a timer from the event loop's clock, which lags performance.now() when the loop
    // is busy (a loaded machine): the timer then fires early by that lag. Here performance.now()
    // is set 20 ms back once both files are seen, the same as timers firing 20 ms early. The
    // damaged file then looked unsettled, was tried again, and the refused one (which came
    // after it) was taken in between: the damaged one was then older than the last file taken,
    // dropped, never counted (CI: "counts a damaged image and a refused format apart" timed out).
    const folder = join(temp, 'out');
    await mkdir(folder);
    const notifier = {
      // A damaged JPEG takes the decoder a moment to refuse, as sharp does.
      publish: vi.fn(async (bytes: Buffer) => {
        if (bytes.toString() === 'cut') {
          await new Promise((resolve) => setTimeout(resolve, 50));
          throw new ImageRejectedError('corrupt', 'premature end of JPEG');
        }
        throw new ImageRejectedError('unsupported-type', 'a GIF');
      }),
    } as unknown as ImageNotifier;
    const options = resolveImageServerOptions({ watchPath: folder, workFolder: join(temp, 'work'), watchSettleMs: 300, watchPollIntervalMs: 100 });
    watch = new CountingWatch(options, notifier, new FileWatcher());
    const started = watch;
    watch.start();
    await waitUntil(() => started.status().ready, 10_000, 'the first listing');
    const real = performance.now.bind(performance);
    let lag = 0;
    vi.spyOn(performance, 'now').mockImplementation(() => real() - lag);
    try {
      for (const [name, bytes] of [['cut.jpg', 'cut'], ['other.png', 'gif']]) {
        await writeFile(join(folder, `.${name}.part`), bytes);
        await rename(join(folder, `.${name}.part`), join(folder, name));
      }
      await waitUntil(() => watch!.statted.includes('cut.jpg'), 5_000, 'the damaged file seen');
      await new Promise((resolve) => setTimeout(resolve, 100));
      lag = 20;
      await waitUntil(() => started.status().filesSkipped >= 2, 5_000, 'both files counted').catch((err: Error) => {
        throw new Error(`${err.message}: ${JSON.stringify(started.status().skippedBy)}`);
      });
      // Settled and counted apart, each tried once.
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(started.status()).toMatchObject({ filesSkipped: 2, skippedBy: { damaged: 1, refused: 1, unreadable: 0, failed: 0 } });
      expect(notifier.publish).toHaveBeenCalledTimes(2);
    } finally {
      vi.restoreAllMocks();
    }
  });
});
