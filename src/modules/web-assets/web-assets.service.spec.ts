import { Logger } from '@nestjs/common';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { makeTempFolder } from '../../../test/helpers/temp-folder.js';
import { resolveImageServerOptions } from '../../config/image-server-options.js';
import { FileStorage } from './file-storage.repository.js';
import { CompressedFiles } from './precompressed.js';
import { PyramidBuilder } from './pyramid.js';
import { VersionStore } from './version-store.js';
import { ViewerFilesService } from './viewer-files.service.js';
import { WebAssetsService, WebFolderError } from './web-assets.service.js';

describe('WebAssetsService.written: a web folder removed under writes running side by side', () => {
  let folder: { path: string; remove(): Promise<void> };
  let warned: string[];

  beforeEach(async () => {
    folder = await makeTempFolder();
    warned = [];
    vi.spyOn(Logger.prototype, 'warn').mockImplementation((message: unknown) => void warned.push(String(message)));
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await folder.remove();
  });

  function service(): { assets: WebAssetsService; web: string } {
    const options = resolveImageServerOptions({ workFolder: folder.path });
    const storage = new FileStorage();
    const assets = new WebAssetsService(options, storage, new VersionStore(options), new PyramidBuilder(options), new ViewerFilesService(options, storage, new CompressedFiles()));
    return { assets, web: options.webFolder };
  }

  const missing = (path: string): NodeJS.ErrnoException => Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' });

  it('a write that failed while another made the folder again is tried again, not refused; the folder is made once', async () => {
    const { assets, web } = service();
    await rm(web, { recursive: true, force: true });
    // The first write finds the folder gone and makes it again; the second had begun before
    // and fails only after that (a publish stages web_image.jpg while its pyramid is cut).
    const first = assets.written(() => writeFile(join(web, 'first.txt'), 'one'));
    let tries = 0;
    const second = assets.written(async () => {
      tries++;
      if (tries === 1) {
        await vi.waitFor(() => expect(existsSync(join(web, 'index.html'))).toBe(true), { timeout: 10_000, interval: 5 });
        throw missing(join(web, 'second.txt'));
      }
      await writeFile(join(web, 'second.txt'), 'two');
    });
    await Promise.all([first, second]);

    expect(tries).toBe(2);
    expect(await readFile(join(web, 'first.txt'), 'utf8')).toBe('one');
    expect(await readFile(join(web, 'second.txt'), 'utf8')).toBe('two');
    expect(warned.filter((line) => line.includes('was removed'))).toHaveLength(1);
  });

  it('a write whose look at the folder overlaps another write making it again waits for that making, then is tried again', async () => {
    const options = resolveImageServerOptions({ workFolder: folder.path });
    const web = options.webFolder;
    let statGate: () => void = () => undefined;
    let publishGate: () => void = () => undefined;
    const statHeld = new Promise<void>((resolve) => (statGate = resolve));
    const publishHeld = new Promise<void>((resolve) => (publishGate = resolve));
    let stats = 0;
    class SlowStat extends FileStorage {
      override async stat(path: string): Promise<Stats> {
        // The first look (the second write's) is held until the first write's making has begun.
        if (stats++ === 0) {
          await statHeld;
        }
        return super.stat(path);
      }
    }
    const storage = new SlowStat();
    class HeldViewer extends ViewerFilesService {
      override async publish(): Promise<void> {
        await mkdir(web, { recursive: true });
        await publishHeld;
        return super.publish();
      }
    }
    const assets = new WebAssetsService(options, storage, new VersionStore(options), new PyramidBuilder(options), new HeldViewer(options, storage, new CompressedFiles()));
    await rm(web, { recursive: true, force: true });
    let tries = 0;
    const second = assets.written(async () => {
      tries++;
      await writeFile(join(web, 'second.txt'), 'two');
    });
    // The first write fails once the second is looking (its stat held), and starts the making.
    await vi.waitFor(() => expect(stats).toBe(1));
    const first = assets.written(() => writeFile(join(web, 'first.txt'), 'one'));
    await vi.waitFor(() => expect(existsSync(web)).toBe(true));
    statGate();
    await new Promise((resolve) => setTimeout(resolve, 20));
    publishGate();
    await Promise.all([first, second]);
    expect(tries).toBe(2);
    expect(await readFile(join(web, 'second.txt'), 'utf8')).toBe('two');
    expect(warned.filter((line) => line.includes('was removed'))).toHaveLength(1);
  });

  it('an ENOENT with the folder there all along is a storage failure, not tried again', async () => {
    const { assets, web } = service();
    let tries = 0;
    const failed = await assets
      .written(() => {
        tries++;
        return Promise.reject(missing(join(web, 'gone', 'x.txt')));
      })
      .catch((err: unknown) => err);
    expect(tries).toBe(1);
    expect(failed).toBeInstanceOf(WebFolderError);
  });
});
