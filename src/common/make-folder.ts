import { mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Creates `path` and its missing parents. Not `mkdir -p` (`recursive: true`): under /proc
 * Node's spins for ever, as a parent that exists answers ENOENT for a new child.
 */
export async function makeFolder(path: string): Promise<void> {
  try {
    await mkdir(path);
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      if (!(await stat(path)).isDirectory()) {
        throw Object.assign(new Error(`${path} is a file, not a folder`), { code: 'ENOTDIR' });
      }
      return;
    }
    if (code !== 'ENOENT' || dirname(path) === path) {
      throw err;
    }
  }
  await makeFolder(dirname(path));
  try {
    await mkdir(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      // The parent is there now, yet "no such file": a filesystem that takes no new folders.
      throw Object.assign(new Error(`cannot create the folder ${path}: ${dirname(path)} takes no new folders`), { code });
    }
    if (code !== 'EEXIST') {
      throw err;
    }
  }
}
