import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeTempFolder } from '../../../test/helpers/temp-folder.js';
import { MAX_VERSION, TRUSTED_VERSION_LIMIT, VERSION_FILE, VersionStore, VERSIONS_FOLDER } from './version-store.js';

describe('VersionStore', () => {
  let temp: { path: string; remove(): Promise<void> };
  const store = (): VersionStore => new VersionStore({ webFolder: temp.path });

  beforeEach(async () => {
    temp = await makeTempFolder('stackcast-versions-');
  });

  afterEach(async () => {
    await temp.remove();
  });

  it('goes on from the persisted counter and the highest folder', async () => {
    await writeFile(join(temp.path, VERSION_FILE), '41\n');
    await mkdir(join(temp.path, VERSIONS_FOLDER, '40'), { recursive: true });
    const versions = store();
    expect(await versions.open()).toBe(41);
    expect(await versions.next()).toBe(42);
  });

  it('starts over when the persisted counter is near 2^53, so every later publish still gets a version', async () => {
    await writeFile(join(temp.path, VERSION_FILE), `${Number.MAX_SAFE_INTEGER - 1}\n`);
    const versions = store();
    const taken = [await versions.next(), await versions.next(), await versions.next()];
    expect(taken).toEqual([1, 2, 3]);
    expect((await readFile(join(temp.path, VERSION_FILE), 'utf8')).trim()).toBe('3');
  });

  it('starts over after the highest trusted folder and moves the forged ones to the trash', async () => {
    for (const name of ['5', '6', String(TRUSTED_VERSION_LIMIT + 7), '9007199254740990']) {
      await mkdir(join(temp.path, VERSIONS_FOLDER, name), { recursive: true });
    }
    const versions = store();
    expect(await versions.open()).toBe(6);
    expect(await versions.next()).toBe(7);
    const left = await readdir(join(temp.path, VERSIONS_FOLDER));
    expect(left.filter((n) => !n.startsWith('.trash-')).sort()).toEqual(['5', '6']);
    expect(left.filter((n) => n.startsWith('.trash-'))).toHaveLength(2);
  });

  it('refuses to move past MAX_VERSION with a clear error', async () => {
    const versions = store();
    await versions.open();
    await expect(versions.advanceTo(MAX_VERSION + 1)).rejects.toThrow(`version must be an integer ≥ 0 and ≤ ${MAX_VERSION}`);
    await versions.advanceTo(MAX_VERSION);
    await expect(versions.next()).rejects.toThrow(/reached its maximum/);
  });
});
