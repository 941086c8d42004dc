import { Inject, Injectable, Logger } from '@nestjs/common';
import { sha256 } from '../../common/digest.js';
import { readdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';
import { FileStorage } from './file-storage.repository.js';
import { appIcons, favicon } from './generated-images.js';
import { CompressedFiles, compressibleType } from './precompressed.js';

/** What START wrote into the web folder (path -> SHA-256): a dot-file, never served. */
export const VIEWER_MANIFEST = '.stackcast-viewer.json';

const VIEWER_SOURCE = fileURLToPath(new URL('./viewer/', import.meta.url));

interface Manifest {
  files: Record<string, string>;
}

/**
 * stackcast's viewer in the web folder: index.html and its sources, favicon.ico,
 * icons/*.png, openseadragon.min.js. START writes them, except a file the user put in
 * place of one (it differs from what stackcast wrote there last time, as recorded in
 * {@link VIEWER_MANIFEST}): that one is kept. A file is stackcast's own when its bytes
 * are exactly what this version publishes; only those get the viewer's strict CSP.
 */
@Injectable()
export class ViewerFilesService {
  private readonly logger = new Logger(ViewerFilesService.name);
  /** This version's viewer files by web-folder path, with their SHA-256; made at the first START. */
  private bundle: Map<string, { body: Buffer; digest: string }> | undefined;

  constructor(
    @Inject(IMAGE_SERVER_OPTIONS) private readonly options: ImageServerOptions,
    private readonly storage: FileStorage,
    private readonly compressed: CompressedFiles,
  ) {}

  /** Whether a web-folder path (`icons/home_rest.png`) is one of the viewer's files. */
  isViewerFile(relative: string): boolean {
    return this.bundle?.has(relative) === true;
  }

  /** Whether bytes of SHA-256 `digest` at `relative` are exactly the file stackcast publishes there. */
  isOwn(relative: string, digest: string): boolean {
    return this.bundle?.get(relative)?.digest === digest;
  }

  /**
   * START (and a web folder recreated after removal): writes each viewer file that is
   * missing, stackcast's from last time, or stackcast's of an earlier version; keeps the
   * others as they are, logged in one line. Then records what is stackcast's now.
   */
  async publish(): Promise<void> {
    const web = this.options.webFolder;
    const bundle = await this.loadBundle();
    await this.storage.ensureFolder(join(web, 'icons'));
    const manifest = await this.readManifest();
    const record: Record<string, string> = {};
    const kept: string[] = [];
    for (const [relative, { body, digest }] of bundle) {
      const path = join(web, relative);
      const onDisk = await this.storage.readFile(path).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') {
          return undefined;
        }
        throw err;
      });
      const found = onDisk && sha256(onDisk);
      if (onDisk === undefined || found === digest || isStackcasts(relative, onDisk, found, manifest)) {
        if (found !== digest) {
          await this.storage.writeAtomic(path, body, { durable: false });
        }
        record[relative] = digest;
      } else {
        kept.push(relative);
        if (manifest?.files[relative] !== undefined) {
          record[relative] = manifest.files[relative];
        }
      }
    }
    await this.storage.writeAtomic(join(web, VIEWER_MANIFEST), `${JSON.stringify({ files: record } satisfies Manifest, null, 1)}\n`);
    if (kept.length > 0) {
      this.logger.log(
        `kept ${kept.join(', ')} in the web folder as the user left ${kept.length === 1 ? 'it' : 'them'} (not what stackcast wrote): ` +
          `delete ${kept.length === 1 ? 'it' : 'them'} and restart to get stackcast's viewer back`,
      );
    }
    await this.warm(bundle);
  }

  /** Compresses the text files now, so the first phone does not wait for it (a file that fails is left to its first request). */
  private async warm(bundle: Map<string, unknown>): Promise<void> {
    for (const relative of bundle.keys()) {
      const type = compressibleType(relative);
      if (type) {
        await this.storage
          .realpath(join(this.options.webFolder, relative))
          .then((real) => this.compressed.get(real, type))
          .catch(() => undefined);
      }
    }
  }

  private async readManifest(): Promise<Manifest | undefined> {
    try {
      const parsed: unknown = JSON.parse((await this.storage.readFile(join(this.options.webFolder, VIEWER_MANIFEST))).toString('utf8'));
      const files: unknown = (parsed as { files?: unknown } | null)?.files;
      if (typeof files !== 'object' || files === null) {
        return undefined;
      }
      return { files: Object.fromEntries(Object.entries(files).filter((e): e is [string, string] => typeof e[1] === 'string')) };
    } catch {
      return undefined; // never written (a new folder, or one an earlier version wrote), or damaged
    }
  }

  private async loadBundle(): Promise<Map<string, { body: Buffer; digest: string }>> {
    if (this.bundle) {
      return this.bundle;
    }
    const files: [string, Buffer][] = [];
    for (const name of await readdir(VIEWER_SOURCE)) {
      files.push([name, await this.storage.readFile(join(VIEWER_SOURCE, name))]);
    }
    const osd = openSeadragonBuild();
    files.push(['openseadragon.min.js', await this.storage.readFile(join(osd, 'openseadragon.min.js'))]);
    for (const icon of (await readdir(join(osd, 'images'))).filter((f) => f.endsWith('.png'))) {
      files.push([`icons/${icon}`, await this.storage.readFile(join(osd, 'images', icon))]);
    }
    files.push(['favicon.ico', await favicon()]);
    for (const [relative, render] of appIcons) {
      files.push([relative, await render()]);
    }
    this.bundle = new Map(files.map(([relative, body]) => [relative, { body, digest: sha256(body) }]));
    return this.bundle;
  }
}

/**
 * Whether a viewer file on disk is stackcast's: what it wrote there last time. A folder
 * without a manifest was written by an earlier version, which replaced every file at each
 * START; only an index.html that is not its page (it loads viewer.js) is the user's there.
 */
function isStackcasts(relative: string, onDisk: Buffer, digest: string | undefined, manifest: Manifest | undefined): boolean {
  if (manifest) {
    return manifest.files[relative] === digest;
  }
  return relative !== 'index.html' || onDisk.includes('<script src="viewer.js">');
}

/** Folder of OpenSeadragon's build in the installed npm package (never a copy in this repo). */
function openSeadragonBuild(): string {
  const pkg = createRequire(import.meta.url).resolve('openseadragon/package.json');
  return join(dirname(pkg), 'build', 'openseadragon');
}
