import { statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeTempFolder } from '../../../test/helpers/temp-folder.js';
import { FileStorage } from './file-storage.repository.js';

describe('FileStorage.ensureFolder', () => {
  const storage = new FileStorage();
  let temp: Awaited<ReturnType<typeof makeTempFolder>>;
  beforeEach(async () => {
    temp = await makeTempFolder();
  });
  afterEach(async () => {
    await temp.remove();
  });

  it('creates the missing folders of a path, and accepts one that exists', async () => {
    const deep = join(temp.path, 'a', 'b', 'c');
    await storage.ensureFolder(deep);
    expect(statSync(deep).isDirectory()).toBe(true);
    await storage.ensureFolder(deep);
    await storage.ensureFolder(temp.path);
  });

  it('refuses a path through a file', async () => {
    await writeFile(join(temp.path, 'file'), 'x');
    await expect(storage.ensureFolder(join(temp.path, 'file', 'sub'))).rejects.toMatchObject({ code: 'ENOTDIR' });
    await expect(storage.ensureFolder(join(temp.path, 'file'))).rejects.toThrow(/not a folder/);
  });

  // Node's recursive mkdir spins for ever there: /proc answers ENOENT under a folder that exists.
  it('fails at once under /proc, naming the folder that takes no new folders', async () => {
    const error = (await storage.ensureFolder(`/proc/stackcast-test-${process.pid}/work`).catch((e: unknown) => e)) as NodeJS.ErrnoException;
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toContain('/proc');
    expect(error.message).toMatch(/cannot create the folder/);
  });
});
