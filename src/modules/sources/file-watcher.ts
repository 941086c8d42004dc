import { Injectable } from '@nestjs/common';
import { watch } from 'chokidar';
import { statfs } from 'node:fs/promises';
import { basename } from 'node:path';

/** What a folder watch reports; paths are absolute, entries are direct children of the folder. */
export interface FolderEvents {
  /** An entry other than a folder (a file, a FIFO...) appeared or changed; `initial` while the first listing runs. */
  entry(path: string, initial: boolean): void;
  /** A folder appeared in the watched one (never reported for the watched folder itself). */
  folder(path: string, initial: boolean): void;
  removed(path: string): void;
  /** The first listing is done: every entry present when the watch began was reported. */
  ready(): void;
  /** An entry could not be looked at (a symlink loop, a permission denied) or the OS watch failed. */
  error(err: NodeJS.ErrnoException): void;
}

export interface FolderWatchOptions {
  /** The names that matter; other entries are never looked at nor reported. */
  accepts(name: string): boolean;
  /** Stat every entry each `intervalMs` instead of OS change events (for network shares). */
  usePolling: boolean;
  intervalMs: number;
}

/** A running folder watch. */
export interface FolderWatch {
  readonly polling: boolean;
  close(): Promise<void>;
}

/** Linux statfs `f_type` of the filesystems where change events from other machines never arrive. */
const NETWORK_FILESYSTEMS = new Set([
  0x6969, // NFS
  0x517b, // SMB
  0xff534d42, // CIFS
  0xfe534d42, // SMB2
  0x65735546, // FUSE (sshfs, rclone...)
  0x01021997, // 9P (WSL, VM shared folders)
  0x564c, // NCP
  0x5346414f, // AFS
]);

/**
 * The filesystem side of the folder watch, on chokidar: one folder, its direct entries,
 * filtered by name before anything is statted. A thin seam so the watch service runs on
 * real temp folders in tests.
 */
@Injectable()
export class FileWatcher {
  watchFolder(folder: string, options: FolderWatchOptions, events: FolderEvents): FolderWatch {
    const watcher = watch(folder, {
      depth: 0,
      persistent: false,
      // Our own rules decide what a name is worth; the folder itself always passes.
      ignored: (path: string) => path !== folder && !options.accepts(basename(path)),
      // A writer that deletes then recreates its file within 100 ms is one change, not unlink + add.
      atomic: true,
      usePolling: options.usePolling,
      interval: options.intervalMs,
      binaryInterval: options.intervalMs,
      ignorePermissionErrors: false,
    });
    let initial = true;
    watcher.on('add', (path: string) => events.entry(path, initial));
    watcher.on('change', (path: string) => events.entry(path, initial));
    watcher.on('addDir', (path: string) => {
      if (path !== folder) {
        events.folder(path, initial);
      }
    });
    watcher.on('unlink', (path: string) => events.removed(path));
    watcher.on('unlinkDir', (path: string) => events.removed(path));
    watcher.on('error', (err: unknown) => events.error(err as NodeJS.ErrnoException));
    watcher.on('ready', () => {
      initial = false;
      events.ready();
    });
    return { polling: watcher.options.usePolling, close: () => watcher.close() };
  }

  /** Whether `folder` is on a network filesystem (Linux), where only polling sees others' writes. */
  async isNetworkFolder(folder: string): Promise<boolean> {
    try {
      return NETWORK_FILESYSTEMS.has((await statfs(folder)).type);
    } catch {
      return false;
    }
  }
}
