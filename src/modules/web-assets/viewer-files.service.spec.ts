import { Logger } from '@nestjs/common';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { alsPage } from '../../../test/fixtures/als/als-page.js';
import { makeTempFolder } from '../../../test/helpers/temp-folder.js';
import { resolveImageServerOptions } from '../../config/image-server-options.js';
import { FileStorage } from './file-storage.repository.js';
import { CompressedFiles } from './precompressed.js';
import { VIEWER_MANIFEST, ViewerFilesService } from './viewer-files.service.js';

describe('ViewerFilesService: START writes the viewer, never over a page the user put there', () => {
  let folder: { path: string; remove(): Promise<void> };
  let logged: string[];

  beforeEach(async () => {
    folder = await makeTempFolder();
    logged = [];
    vi.spyOn(Logger.prototype, 'log').mockImplementation((message: unknown) => void logged.push(String(message)));
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await folder.remove();
  });

  const service = (): ViewerFilesService => new ViewerFilesService(resolveImageServerOptions({ workFolder: folder.path }), new FileStorage(), new CompressedFiles());
  const read = (name: string): Promise<string> => readFile(join(folder.path, name), 'utf8');

  it('writes every viewer file into an empty folder and records what it wrote', async () => {
    await service().publish();
    const manifest = JSON.parse(await read(VIEWER_MANIFEST)) as { files: Record<string, string> };
    for (const name of ['index.html', 'viewer.js', 'sw.js', 'openseadragon.min.js', 'favicon.ico', 'icons/home_rest.png', 'icons/app-192.png']) {
      expect(manifest.files[name], name).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(await read('index.html')).toContain('<script src="viewer.js"></script>');
    expect(logged.filter((l) => l.includes('kept'))).toEqual([]);
  });

  it("keeps the user's page at every START, says so in one line, and writes stackcast's again once it is deleted", async () => {
    await service().publish();
    const ours = await read('index.html');
    await writeFile(join(folder.path, 'index.html'), alsPage());
    await writeFile(join(folder.path, 'viewer.css'), 'body { background: navy }');
    for (let start = 0; start < 2; start++) {
      await service().publish();
      expect(await read('index.html')).toBe(alsPage());
      expect(await read('viewer.css')).toBe('body { background: navy }');
    }
    const kept = logged.filter((l) => l.includes('kept'));
    expect(kept).toHaveLength(2);
    expect(kept[0]).toBe(
      "kept index.html, viewer.css in the web folder as the user left them (not what stackcast wrote): delete them and restart to get stackcast's viewer back",
    );
    await rm(join(folder.path, 'index.html'));
    await service().publish();
    expect(await read('index.html')).toBe(ours);
    expect(await read('viewer.css')).toBe('body { background: navy }');
  });

  it('replaces a file stackcast wrote last time (an upgrade), and tells its own bytes from any other', async () => {
    await service().publish();
    const ours = await read('viewer.js');
    // What an earlier version wrote, recorded as such.
    await writeFile(join(folder.path, 'viewer.js'), '/* stackcast 0.0.1 */');
    const manifest = JSON.parse(await read(VIEWER_MANIFEST)) as { files: Record<string, string> };
    const { createHash } = await import('node:crypto');
    manifest.files['viewer.js'] = createHash('sha256').update('/* stackcast 0.0.1 */').digest('hex');
    await writeFile(join(folder.path, VIEWER_MANIFEST), JSON.stringify(manifest));
    const viewer = service();
    await viewer.publish();
    expect(await read('viewer.js')).toBe(ours);
    expect(viewer.isOwn('viewer.js', createHash('sha256').update(ours).digest('hex'))).toBe(true);
    expect(viewer.isOwn('viewer.js', manifest.files['viewer.js'])).toBe(false);
    expect(viewer.isOwn('notes.html', createHash('sha256').update(ours).digest('hex'))).toBe(false);
    expect(viewer.isViewerFile('icons/zoomin_rest.png')).toBe(true);
    expect(viewer.isViewerFile('notes.txt')).toBe(false);
  });

  it('a folder an earlier version wrote (no record): its files are replaced, a page that is not its viewer is kept', async () => {
    await service().publish();
    const ours = await read('index.html');
    await rm(join(folder.path, VIEWER_MANIFEST));
    await writeFile(join(folder.path, 'index.html'), ours.replace('Live stack', 'Live stack (older)'));
    await writeFile(join(folder.path, 'viewer.css'), '/* older */');
    await service().publish();
    expect(await read('index.html')).toBe(ours);
    expect(await read('viewer.css')).not.toBe('/* older */');

    await rm(join(folder.path, VIEWER_MANIFEST));
    await writeFile(join(folder.path, 'index.html'), alsPage());
    await service().publish();
    expect(await read('index.html')).toBe(alsPage());
    expect(logged.filter((l) => l.includes('kept index.html'))).toHaveLength(1);
  });
});
