import { Injectable, Logger, type BeforeApplicationShutdown } from '@nestjs/common';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { BroadcastService } from '../../gateway/broadcast.service.js';
import { ClusterPublisher } from '../cluster/cluster-publisher.service.js';
import { ClusterUnavailableError } from '../cluster/cluster-unavailable.error.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { PyramidBuilder, type PreparedPyramid } from '../web-assets/pyramid.js';
import { VersionStore } from '../web-assets/version-store.js';
import { assertMetrics, IMAGE_FILE, WebAssetsService, WebFolderError, type SessionMetrics } from '../web-assets/web-assets.service.js';
import { combineMetrics } from './fits-intake.js';
import { damagedImage, ImageConverter, type PublishableImage } from './image-converter.service.js';
import type { ImageFormat } from '../../common/image-format.js';

/** Metrics that go with an image: absolute values of the stack now, not increments. */
export type ImageMetrics = SessionMetrics;

/** How {@link ImageNotifier.publish} checks an image. */
export interface PublishOptions {
  /**
   * Kept for compatibility; both values now check the same. Every image is decoded whole
   * while its pyramid (`/v/<version>/`) is cut, so a JPEG cut in the middle or overwritten
   * in place while it was read is always refused, with no separate decode.
   * @deprecated
   */
  verify?: 'full' | 'header';
  /** The format the sender declared (`Content-Type`): bytes of another format are refused as `unsupported-type`. */
  declaredFormat?: ImageFormat;
  /**
   * Metrics used only where neither `metrics` nor the image's own header (FITS) give a
   * value: the folder watch counts images, but a stacker's header knows better.
   */
  fallbackMetrics?: ImageMetrics;
}

/**
 * Publishes images to every viewer. Inject it in any provider of an app that imports
 * `ImageServerModule`. Publishes land in call order: the image on disk and data.json
 * always belong to the same call, and `new_image` goes out only once both are written.
 */
@Injectable()
export class ImageNotifier implements BeforeApplicationShutdown {
  private readonly logger = new Logger(ImageNotifier.name);

  constructor(
    private readonly assets: WebAssetsService,
    private readonly broadcast: BroadcastService,
    private readonly converter: ImageConverter,
    private readonly versions: VersionStore,
    private readonly pyramids: PyramidBuilder,
    private readonly cluster: ClusterPublisher,
    private readonly metrics: MetricsService,
  ) {}

  /**
   * Publishes a JPEG, PNG, TIFF or FITS (8 to 32 bits per channel, grey or colour) as a
   * new version: cuts its Deep Zoom pyramid (`/v/<version>/`), writes it as web_image.jpg
   * and the metrics to data.json (both atomically), then broadcasts
   * `{"type":"new_image","version":N}`. A JPEG within `maxImageSize` is written byte for
   * byte; other images are converted (orientation applied, linear data auto-stretched per
   * the `stretch` option, downsized to `maxImageSize`, JPEG quality `jpegQuality`). Metrics
   * left out come from a FITS header (stack size, exposure) when it has them, else keep
   * their current values.
   *
   * An image it cannot use (another format, damaged, truncated) is refused with an
   * `ImageRejectedError` and nothing on disk changes; bad metrics throw
   * `InvalidMetricsError`, also before anything is written.
   */
  async publish(image: Buffer, metrics: ImageMetrics = {}, options: PublishOptions = {}): Promise<void> {
    const began = performance.now();
    try {
      const ready = await this.checkWriteAnnounce(image, metrics, options);
      const seconds = (performance.now() - began) / 1000;
      this.metrics.recordPublish(seconds);
      this.logPublished(ready, Math.round(seconds * 1000));
    } catch (err) {
      this.metrics.recordPublish(0, err instanceof ClusterUnavailableError ? 'unavailable' : 'rejected');
      throw err;
    }
  }

  /**
   * Rewrites data.json with new metrics, then broadcasts `new_image` so viewers refresh it.
   * The image and its version stay as they are. It takes its turn after the publishes
   * called before it.
   */
  async updateMetrics(metrics: ImageMetrics): Promise<void> {
    assertMetrics(metrics);
    if (this.cluster.enabled) {
      return this.cluster.storeMetrics(metrics);
    }
    await this.assets.exclusive(async () => {
      await this.assets.writeMetrics(metrics);
      const { version } = this.assets.session;
      this.broadcast.broadcast(version === null ? { type: 'new_image' } : { type: 'new_image', version });
    });
  }

  /**
   * For a caller that wrote web_image.jpg into the web folder itself: takes it in as a new
   * version (its pyramid cut first) and broadcasts. A file that does not decode whole is
   * refused with an `ImageRejectedError` and the viewers keep the current version. It takes
   * its turn after the publishes called before it.
   * With `redisUrl` the file is published to every replica.
   */
  async notifyNewImage(): Promise<void> {
    if (this.cluster.enabled) {
      return this.publish(await readFile(join(this.assets.webFolder, IMAGE_FILE)));
    }
    await this.assets.exclusive(async () => {
      const image = await this.assets.readImageFromDisk();
      const pyramid = await this.assets.written(() => this.pyramids.prepare(image.body)).catch((err: unknown) => {
        throw isDecodeError(err) ? damagedImage('jpeg', err) : err;
      });
      const version = await this.takeVersion(pyramid);
      await this.assets.takeImageFromDisk(image, version);
      this.broadcast.broadcast({ type: 'new_image', version });
      this.pruneVersions();
    });
  }

  /** The publish path, top to bottom. */
  private async checkWriteAnnounce(image: Buffer, metrics: ImageMetrics, options: PublishOptions): Promise<PublishableImage> {
    if (this.cluster.enabled) {
      // With Redis, 2 and 3 happen on every replica (ClusterPublisher.apply): the version is
      // Redis's, and each replica cuts its own pyramid from the bytes stored there.
      assertMetrics(metrics);
      const result = await this.converter.toPublishable(image, {
        verifyPixels: (options.verify ?? 'full') === 'full',
        declaredFormat: options.declaredFormat,
      });
      await this.cluster.store(result.jpeg, metricsOf(result, metrics, options));
      return result;
    }
    // 1. Check the metrics; check / convert the image, then cut its pyramid out of sight.
    //    Both start at once, outside the write queue, so uploads are prepared side by side.
    assertMetrics(metrics);
    const preparing = this.prepare(image, options.declaredFormat);
    // Its rejection is taken in its turn below, maybe only after earlier publishes.
    preparing.catch(() => undefined);
    // 2. In call order (the web folder's one queue): a version, its pyramid put in place,
    //    then web_image.jpg and data.json; 3. announce that version.
    return this.assets.exclusive(async () => {
      const { result, pyramid } = await preparing;
      const version = await this.takeVersion(pyramid);
      await this.assets.writeImage(result.jpeg, metricsOf(result, metrics, options), version);
      this.broadcast.broadcast({ type: 'new_image', version });
      this.pruneVersions();
      return result;
    });
  }

  /**
   * On shutdown (a signal), publishes already called finish writing before the HTTP
   * server and the process go: an image sent during STOP is not lost.
   */
  async beforeApplicationShutdown(): Promise<void> {
    await this.assets.drained();
    await this.pyramids.idle();
  }

  /**
   * The JPEG to write, and its pyramid. Cutting the pyramid decodes every block with
   * libjpeg's warnings as errors: for a JPEG passed through it is the full check, so the
   * converter is asked for the structural checks only.
   */
  private async prepare(image: Buffer, declaredFormat: ImageFormat | undefined): Promise<{ result: PublishableImage; pyramid: PreparedPyramid }> {
    const result = await this.converter.toPublishable(image, { verifyPixels: false, declaredFormat });
    try {
      return { result, pyramid: await this.assets.written(() => this.pyramids.prepare(result.jpeg)) };
    } catch (err) {
      throw result.passedThrough && isDecodeError(err) ? damagedImage('jpeg', err) : err;
    }
  }

  /** The next version (persisted first), with its pyramid renamed into `v/<version>/`. */
  private async takeVersion(pyramid: PreparedPyramid): Promise<number> {
    let version: number;
    try {
      version = await this.versions.next();
    } catch (err) {
      await pyramid.discard();
      throw err;
    }
    const built = await pyramid.commit(version);
    this.logger.debug(`version ${version}: ${built.width}x${built.height} pyramid in ${built.ms} ms`);
    return version;
  }

  /** Older versions go once the new one is announced, off the publish's path. */
  private pruneVersions(): void {
    this.pyramids.pruneInBackground((err) => this.logger.warn(`could not remove old versions: ${err.message}`));
  }

  private logPublished(result: PublishableImage, ms: number): void {
    this.logger.debug(
      result.passedThrough
        ? `published a ${result.width}x${result.height} JPEG as it is (${result.jpeg.length} bytes) in ${ms} ms`
        : `published a ${result.sourceFormat}${result.stretched ? ', auto-stretched,' : ''} as a ${result.width}x${result.height} JPEG (${result.jpeg.length} bytes) in ${ms} ms`,
    );
  }
}

/** A decoder's complaint (libvips); the filesystem's come as a WebFolderError or with an errno code. */
function isDecodeError(err: unknown): boolean {
  return err instanceof Error && !(err instanceof WebFolderError) && (err as NodeJS.ErrnoException).code === undefined;
}

/** The caller's metrics, then what a FITS header says, then the caller's fallbacks (the watch's count). */
function metricsOf(result: PublishableImage, metrics: ImageMetrics, options: PublishOptions): ImageMetrics {
  return combineMetrics(metrics, result.headerMetrics, options.fallbackMetrics ?? {});
}
