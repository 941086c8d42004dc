import { Injectable, Logger } from '@nestjs/common';
import { BroadcastService } from '../../gateway/broadcast.service.js';
import { PyramidBuilder, type PreparedPyramid } from '../web-assets/pyramid.js';
import { VersionStore } from '../web-assets/version-store.js';
import { WebAssetsService, WebFolderError, type SessionMetrics } from '../web-assets/web-assets.service.js';
import { UndecodableImageError, type PreparedImage } from './publisher.js';

/** An image with its pyramid cut out of sight, waiting for its turn in the web folder's queue. */
export interface CutImage extends PreparedImage {
  pyramid: PreparedPyramid;
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
    private readonly broadcast: BroadcastService,
  ) {}

  /** The version shown now (null: the waiting image, or a resumed image whose pyramid is gone). */
  get shown(): number | null {
    return this.assets.session.version;
  }

  /**
   * Cuts the image's pyramid out of sight, outside the queue, so several publishes are
   * prepared side by side. It decodes every block: a damaged image fails here with an
   * {@link UndecodableImageError} (a storage failure with a WebFolderError).
   */
  async cut(image: PreparedImage | Promise<PreparedImage>): Promise<CutImage> {
    const prepared = await image;
    try {
      return { ...prepared, pyramid: await this.assets.written(() => this.pyramids.prepare(prepared.jpeg)) };
    } catch (err) {
      const decoder = err instanceof Error && !(err instanceof WebFolderError) && (err as NodeJS.ErrnoException).code === undefined;
      throw decoder ? new UndecodableImageError(err.message, { cause: err }) : err;
    }
  }

  /**
   * Writes `image` as a version and announces it, in the queue's order of this call (the
   * image may still be cut meanwhile). `version` is the number to use (Redis's), with
   * `counter` the global counter to carry this web folder's up to; left out, the next of
   * this web folder's own. A failure discards the pyramid and leaves the files as they were.
   */
  writeImage(cutting: Promise<CutImage>, version?: { image: number; counter: number }): Promise<number> {
    // Its rejection is taken in its turn, maybe only after earlier writes.
    cutting.catch(() => undefined);
    return this.assets.exclusive(async () => {
      const image = await cutting;
      try {
        let number: number;
        if (version) {
          await this.versions.advanceTo(version.counter);
          number = version.image;
        } else {
          number = await this.versions.next();
        }
        const built = await this.assets.written(() => image.pyramid.commit(number));
        this.logger.debug(`version ${number}: ${built.width}x${built.height} pyramid in ${built.ms} ms`);
        await this.assets.writeImage(image.jpeg, image.metrics, number);
        this.announce();
        return number;
      } catch (err) {
        await image.pyramid.discard().catch(() => undefined);
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

  /** Resolves once the writes queued so far and the background prunes are done (shutdown). */
  async idle(): Promise<void> {
    await this.assets.drained();
    await this.pyramids.idle();
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
