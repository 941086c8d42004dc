import { Logger } from '@nestjs/common';
import type { Stats } from 'node:fs';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { resolveImageServerOptions } from '../../config/image-server-options.js';
import type { ImageNotifier } from '../image-notifier/image-notifier.service.js';
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
});
