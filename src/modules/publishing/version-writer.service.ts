import { Injectable, Logger } from '@nestjs/common';
import { BroadcastService } from '../../gateway/broadcast.service.js';
import { HistoryService } from '../history/history.service.js';
import { DeepLevels } from '../web-assets/deep-levels.service.js';
import { RelayService } from '../relay/relay.service.js';
import { PyramidBuilder, PyramidInputError, VERSION_INFO_FILE, type PreparedPyramid, type RawPixels } from '../web-assets/pyramid.js';
import { VersionStore } from '../web-assets/version-store.js';
import { WebAssetsService, WebFolderError, type SessionMetrics, type StagedImage } from '../web-assets/web-assets.service.js';
import { UndecodableImageError, type PreparedImage } from './publisher.js';

/** An image with its pyramid cut out of sight, waiting for its turn in the web folder's queue. */
export interface CutImage extends Omit<PreparedImage, 'jpeg'> {
  /** Encoded by now. */
  jpeg: Buffer;
  pyramid: PreparedPyramid;
  /** Its preview for the history, made from the pyramid's decode; undefined with the history off. */
  preview?: Promise<Buffer>;
  /** web_image.jpg already on the disk under a temp name, renamed into place in its turn. */
  staged: StagedImage;
}

/**
 * The one place a version is written, whatever decided its number: its pyramid put in
 * place under `v/<version>/`, web_image.jpg and data.json, then `new_image`, then the old
 * versions pruned off the path. Everything runs in the web folder's one queue, in call order.
 */
@Injectable()
export class VersionWriter {
  private readonly logger = new Logger(VersionWriter.name);

  constructor(
    private readonly assets: WebAssetsService,
    private readonly versions: VersionStore,
    private readonly pyramids: PyramidBuilder,
    private readonly deepLevels: DeepLevels,
    private readonly broadcast: BroadcastService,
    private readonly history: HistoryService,
    private readonly relay: RelayService,
  ) {}

  /** The version shown now (null: the waiting image, or a resumed image whose pyramid is gone). */
  get shown(): number | null {
    return this.assets.session.version;
  }

  /**
   * Cuts the image's pyramid out of sight, outside the queue, so several publishes are
   * prepared side by side. It decodes every block of a JPEG not made here: a damaged image
   * fails with an {@link UndecodableImageError} (a storage failure with a WebFolderError).
   */
  async cut(image: PreparedImage | Promise<PreparedImage>): Promise<CutImage> {
    const prepared = await image;
    // A JPEG made here from pixels may still be encoding: its home levels are cut from those meanwhile.
    const encoding = Promise.resolve(prepared.jpeg);
    // web_image.jpg goes to the disk while the pyramid is cut: its turn only renames it.
    const staging = encoding.then((bytes) => this.assets.stageImage(bytes));
    staging.catch(() => undefined);
    // The history's preview from the pixels the home levels are cut from (one decode per
    // publish), made while the tiles are cut; from the JPEG when none are kept.
    let preview: Promise<Buffer> | undefined;
    const previewOf = (source: Buffer | RawPixels): void => {
      try {
        preview = this.history.preview(source);
      } catch (err) {
        // The history's failure (sharp refusing its input at once), not the image's: the frame is lost, not the publish.
        preview = Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
      // Awaited (or dropped) in writeImage's turn.
      preview?.catch(() => undefined);
    };
    let pyramid: PreparedPyramid;
    let jpeg: Buffer;
    try {
      pyramid = await this.assets.written(() => this.pyramids.prepare(encoding, { pixels: prepared.pixels, onPixels: previewOf }));
      jpeg = await encoding;
    } catch (err) {
      await staging.then((staged) => staged.file.discard(), () => undefined);
      // The encoder's failure as it is (a converted image's): not one of the image's blocks.
      const encoder = await encoding.then(() => undefined, (failure: unknown) => ({ failure }));
      if (encoder) {
        throw encoder.failure;
      }
      const decoder = err instanceof Error && !(err instanceof WebFolderError) && !(err instanceof PyramidInputError) && (err as NodeJS.ErrnoException).code === undefined;
      throw decoder ? new UndecodableImageError(err.message, { cause: err }) : err;
    }
    if (!preview) {
      previewOf(jpeg);
    }
    try {
      // The converter's pixels are cut: not held while the image waits for its turn.
      return { ...prepared, jpeg, pixels: undefined, preview, pyramid, staged: await staging };
    } catch (err) {
      await pyramid.discard().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Writes `image` as a version and announces it, in the queue's order of this call (the
   * image may still be cut meanwhile). `version` is the number to use (Redis's), with
   * `counter` the global counter to carry this web folder's up to; left out, the next of
   * this web folder's own. A failure discards the pyramid and leaves the files as they were.
   * Once announced, the version goes to the relay (with `upstreamUrl`) unless `relay` is false
   * (a replica applying another replica's publish: the one that took it relays it).
   */
  writeImage(cutting: Promise<CutImage>, version?: { image: number; counter: number }, relay = true): Promise<number> {
    // Its rejection is taken in its turn, maybe only after earlier writes.
    cutting.catch(() => undefined);
    return this.assets.exclusive(async () => {
      // Its number is taken (persisted) while the image is still cut: not on the way to `new_image`.
      // Through `written`: a web folder removed meanwhile is made again (once, with the cut's).
      const numbering = this.assets.written(() => (version ? this.versions.advanceTo(version.counter).then(() => version.image) : this.versions.next()));
      // Its failure is taken below, after the cut's.
      numbering.catch(() => undefined);
      let image: CutImage;
      try {
        image = await cutting;
      } catch (err) {
        // A refused image costs no number: its own is given back (nothing else took one meanwhile).
        await numbering.then((number) => (version ? undefined : this.versions.giveBack(number)), () => undefined);
        throw err;
      }
      try {
        const number = await numbering;
        const stackSize = image.metrics.stackSize ?? this.assets.session.stackSize;
        const object = image.metrics.object ?? null;
        // Beside the pyramid: what the download of the full image is named after.
        const about = JSON.stringify({ object, stackSize, at: new Date().toISOString() });
        // Not tried twice: a folder removed under it took the pyramid along.
        const built = await this.assets.written(() => image.pyramid.commit(number, { [VERSION_INFO_FILE]: about }), { again: false });
        this.logger.debug(`version ${number}: ${built.width}x${built.height} pyramid in ${built.ms} ms`);
        await this.assets.writeImage(image.jpeg, image.metrics, number, image.staged);
        await this.recordHistory(number, image.preview);
        this.announce();
        // The levels deeper than the home ones, from now on: not before, where the cut would take a
        // core from the turn and the broadcast (its tiles are served as they come, see DeepLevels.provide).
        this.cutDeepLevels(number, image);
        if (relay) {
          const { stackSize: size, exposureSeconds, object: shownObject } = this.assets.session;
          this.relay.offer({ version: number, jpeg: image.jpeg, stackSize: size, exposureSeconds, object: shownObject });
        }
        return number;
      } catch (err) {
        await image.pyramid.discard().catch(() => undefined);
        await image.staged.file.discard().catch(() => undefined);
        throw err;
      } finally {
        this.prune();
      }
    });
  }

  /** Writes new metrics for the image shown now (data.json) and announces them; `counter` as in {@link writeImage}. */
  async writeMetrics(metrics: SessionMetrics, counter?: number): Promise<void> {
    await this.assets.exclusive(async () => {
      if (counter !== undefined) {
        await this.versions.advanceTo(counter);
      }
      await this.assets.writeMetrics(metrics);
      this.announce();
    });
  }

  /**
   * A full disk: removes every version but the one shown, in the queue (no write under
   * way), so the next try has room. Resolves with the versions removed (none: nothing to free).
   */
  async makeRoom(): Promise<number[]> {
    const removed = await this.assets.exclusive(() => this.pyramids.prune(1));
    if (removed.length > 0) {
      this.logger.warn(`the disk of the web folder is full: removed versions ${removed.join(', ')} to make room for the new one`);
    }
    return removed;
  }

  /** Resolves once the writes queued so far and the background prunes are done (shutdown). */
  async idle(): Promise<void> {
    await this.assets.drained();
    await this.pyramids.idle();
  }

  /** The version's frame in the history, before it is announced; a failure costs the frame, not the publish. */
  private async recordHistory(version: number, preview: Promise<Buffer> | undefined): Promise<void> {
    if (!preview) {
      return;
    }
    const { lastImageAt, stackSize, exposureSeconds, object } = this.assets.session;
    try {
      await this.history.record(await preview, { version, at: (lastImageAt ?? new Date()).toISOString(), stackSize, exposure: exposureSeconds, object });
    } catch (err) {
      this.logger.warn(`version ${version} has no frame in the history: ${(err as Error).message}`);
    }
  }

  /** From the image in memory when it is big and no other cut runs, else queued (cut from its file). */
  private cutDeepLevels(version: number, image: CutImage): void {
    const { width, height, grey } = image.pyramid;
    if (!this.deepLevels.fromMemory(version, image.jpeg, width, height, grey)) {
      this.deepLevels.enqueue(version);
    }
  }

  private announce(): void {
    const { version } = this.assets.session;
    this.broadcast.broadcast(version === null ? { type: 'new_image' } : { type: 'new_image', version });
  }

  /** Older versions go once the new one is announced, off the publish's path. */
  private prune(): void {
    this.pyramids.pruneInBackground((err) => this.logger.warn(`could not remove old versions: ${err.message}`));
  }
}
