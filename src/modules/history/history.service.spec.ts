import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { makeTempFolder } from '../../../test/helpers/temp-folder.js';
import { resolveImageServerOptions } from '../../config/image-server-options.js';
import { FileStorage } from '../web-assets/file-storage.repository.js';
import { animatedWebp, HistoryService, type HistoryFrame } from './history.service.js';

/** A real FileStorage whose preview writes hang once armed, as in a process killed mid-write. */
class StallingStorage extends FileStorage {
  armed = false;
  reached: Promise<void>;
  private reach = (): void => undefined;

  constructor() {
    super();
    this.reached = new Promise((resolve) => (this.reach = resolve));
  }

  override async writeAtomic(path: string, data: Buffer | string, options?: { durable?: boolean }): Promise<void> {
    if (this.armed && /\d+\.jpg$/.test(path)) {
      this.reach();
      return new Promise(() => undefined);
    }
    return super.writeAtomic(path, data, options);
  }
}

const frame = (version: number): HistoryFrame => ({ version, at: new Date(2026, 11, 6, 22, version).toISOString(), stackSize: version, exposure: version * 30, object: null });

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) {
    await cleanups.pop()?.();
  }
});

describe('HistoryService', () => {
  it('a process killed between thinning for a new frame and writing it: after a restart the history still ends with the latest frame', async () => {
    const folder = await makeTempFolder();
    cleanups.push(() => folder.remove());
    // Three 100 KB previews fit in 0.35 MB, a fourth does not.
    const options = { webFolder: folder.path, historyBudgetMb: 0.35 };
    const preview = Buffer.alloc(100 * 1024, 7);
    const storage = new StallingStorage();
    const first = new HistoryService(options, storage);
    for (const v of [1, 2, 3, 4]) {
      await first.record(preview, frame(v));
    }
    expect((await first.list()).map((f) => f.version)).toEqual([1, 3, 4]);

    // Version 5 is served (its image and data.json are written before its frame), then the kill.
    const image = await sharp({ create: { width: 2000, height: 1000, channels: 3, background: '#345' } }).jpeg().toBuffer();
    await writeFile(join(folder.path, 'web_image.jpg'), image);
    await writeFile(join(folder.path, 'data.json'), JSON.stringify({ STACK_SIZE: 5, VERSION: 5 }));
    storage.armed = true;
    void first.record(preview, frame(5));
    await storage.reached;

    // The restart: another service on the same folder, while the first never finishes.
    const second = new HistoryService(options, new FileStorage());
    const kept = await second.list();
    expect(kept[0].version).toBe(1);
    // The latest is the version served (its preview made again), or else the one before it.
    expect(kept.at(-1)).toEqual(frame(5));
    const file = await second.previewFile(5);
    const meta = await sharp(file).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 1280, 640]);
    expect(second.diskBytes).toBeLessThanOrEqual(options.historyBudgetMb * 1024 * 1024);
  });

  it('a grey image\'s preview is a grey JPEG, and a timelapse joins grey and colour previews into one animation', async () => {
    const history = new HistoryService(resolveImageServerOptions({ webFolder: '/nonexistent' }), new FileStorage());
    const grey = { data: Buffer.alloc(64 * 48, 120), raw: { width: 64, height: 48, channels: 1 as const } };
    const colour = { data: Buffer.alloc(64 * 48 * 3, 200), raw: { width: 64, height: 48, channels: 3 as const } };
    const previews = await Promise.all([grey, colour, grey].map((pixels) => history.preview(pixels)!));
    expect(await Promise.all(previews.map(async (p) => (await sharp(p).metadata()).channels))).toEqual([1, 3, 1]);
    const webp = await animatedWebp(previews, 32);
    const meta = await sharp(webp, { animated: true }).metadata();
    expect([meta.format, meta.pages, meta.width, meta.pageHeight]).toEqual(['webp', 3, 32, 24]);
  });
});

