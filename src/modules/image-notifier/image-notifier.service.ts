import { Injectable, Logger, type BeforeApplicationShutdown } from '@nestjs/common';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ImageFormat } from '../../common/image-format.js';
import { ClusterUnavailableError } from '../cluster/cluster-unavailable.error.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { ClusterPublisher } from '../cluster/cluster-publisher.service.js';
import { LocalPublisher } from '../publishing/local-publisher.service.js';
import { UndecodableImageError, type Publisher } from '../publishing/publisher.js';
import { VersionWriter } from '../publishing/version-writer.service.js';
import { assertMetrics, IMAGE_FILE, WebAssetsService, type SessionMetrics } from '../web-assets/web-assets.service.js';
import { combineMetrics } from './fits-intake.js';
import { ScopeHooks } from '../../shared/scope-hooks/scope-hooks.js';
import { ScopeTitle } from '../../shared/scope-hooks/scope-title.js';
import { MAIN_SCOPE, SCOPE_ID_PATTERN } from '../../config/image-server-options.js';
import { damagedImage, ImageConverter, type PublishableImage } from './image-converter.service.js';

/** Metrics that go with an image: absolute values of the stack now, not increments. */
export type ImageMetrics = SessionMetrics;

/** How {@link ImageNotifier.publish} takes an image. Every image is decoded whole before it is published. */
export interface PublishOptions {
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
  /** Where versions come from: this process, or Redis with `redisUrl`. */
  private readonly publisher: Publisher;
  /** The target set with {@link setTarget}: the object of images that name none. */
  private target: string | null = null;
  /** Whether the image shown now named its own object (query, header or file name). */
  private shownNamesObject = false;

  constructor(
    private readonly assets: WebAssetsService,
    private readonly converter: ImageConverter,
    private readonly writer: VersionWriter,
    private readonly metrics: MetricsService,
    local: LocalPublisher,
    cluster: ClusterPublisher,
    private readonly scopeHooks: ScopeHooks,
    private readonly scopeTitle: ScopeTitle,
  ) {
    // Chosen here rather than by a factory provider: Nest would run the cluster publisher's
    // lifecycle hooks once more for the alias.
    this.publisher = cluster.enabled ? cluster : local;
  }

  /**
   * The ImageNotifier of scope `id` (served under `/s/<id>/`), the scope created if it does
   * not exist yet (beyond `maxScopes` this rejects with an HttpException 409); `main`
   * (or this notifier's own scope) is this one. Call it on the main scope's notifier.
   */
  async scope(id: string): Promise<ImageNotifier> {
    if (id === this.scopeTitle.scope) {
      return this;
    }
    if (!SCOPE_ID_PATTERN.test(id)) {
      throw new Error(`scope id ${JSON.stringify(id).slice(0, 60)} is invalid: expected ${SCOPE_ID_PATTERN.source}`);
    }
    if (this.scopeHooks.open === undefined) {
      throw new Error(`scope "${id}" cannot be opened from scope "${this.scopeTitle.scope}": use the ${MAIN_SCOPE} scope's ImageNotifier`);
    }
    return (await this.scopeHooks.open(id)) as ImageNotifier;
  }

  /**
   * Publishes a JPEG, PNG, TIFF or FITS (8 to 32 bits per channel, grey or colour) as a
   * new version: cuts its Deep Zoom pyramid (`/v/<version>/`), writes it as web_image.jpg
   * and the metrics to data.json (both atomically), then broadcasts
   * `{"type":"new_image","version":N}`. A JPEG within `maxImageSize` is written byte for
   * byte; other images are converted (orientation applied, linear data auto-stretched per
   * the `stretch` option, downsized to `maxImageSize`, JPEG quality `jpegQuality`). Metrics
   * left out come from a FITS header (stack size, exposure) when it has them, else keep
   * their current values. `metrics.object` names the target (data.json `OBJECT`); first
   * match wins: it, the FITS `OBJECT` card, the target set with {@link setTarget}.
   *
   * An image it cannot use (another format, damaged, truncated) is refused with an
   * `ImageRejectedError` and nothing on disk changes; bad metrics throw
   * `InvalidMetricsError`, also before anything is written.
   */
  publish(image: Buffer, metrics: ImageMetrics = {}, options: PublishOptions = {}): Promise<void> {
    return this.publishBytes(image, metrics, options);
  }

  /** {@link publish}, for bytes that may still be read: its place in line is the call's. */
  private async publishBytes(image: Buffer | Promise<Buffer>, metrics: ImageMetrics = {}, options: PublishOptions = {}): Promise<void> {
    const began = performance.now();
    try {
      const ready = await this.checkAndPublish(image, metrics, options);
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
    await this.publisher.publishMetrics(metrics);
  }

  /**
   * Sets the target (`POST /api/target`): the object of the images that name none
   * themselves (by `metrics.object`, a FITS `OBJECT` card or a watched file's name). When
   * the image shown now names none, data.json's `OBJECT` changes at once and `new_image`
   * goes out. `null` clears it for the next images.
   */
  async setTarget(object: string | null): Promise<void> {
    if (object !== null) {
      assertMetrics({ object });
    }
    this.target = object;
    if (object !== null && !this.shownNamesObject) {
      await this.publisher.publishMetrics({ object });
    }
  }

  /** The target set with {@link setTarget}; null when none. */
  get currentTarget(): string | null {
    return this.target;
  }

  /**
   * For a caller that wrote web_image.jpg into the web folder itself: publishes that file
   * as a new version, like {@link publish}. A file that does not decode whole is refused
   * with an `ImageRejectedError` and the viewers keep the current version.
   */
  async notifyNewImage(): Promise<void> {
    // The read is handed over unawaited: the publish's place in line is this call's.
    await this.publishBytes(readFile(join(this.assets.webFolder, IMAGE_FILE)));
  }

  /**
   * The publish path, top to bottom: 1. check the metrics, check / convert the image and
   * resolve its metrics; 2. the publisher of the mode gives it a version, and the one
   * VersionWriter cuts its pyramid, writes the files and announces it.
   */
  private async checkAndPublish(image: Buffer | Promise<Buffer>, metrics: ImageMetrics, options: PublishOptions): Promise<PublishableImage> {
    assertMetrics(metrics);
    // Resolves as soon as the image is accepted: a FITS's JPEG is encoded while its pyramid is cut.
    const converting = Promise.resolve(image).then((bytes) =>
      this.converter.start(bytes, {
        // Without a pyramid cut before anything is stored (Redis), the converter decodes it whole.
        verifyPixels: !this.publisher.checksPixels,
        // Its pyramid is cut here from the pixels of an image made here: their home level too.
        homeLevel: this.publisher.checksPixels,
        declaredFormat: options.declaredFormat,
      }),
    );
    // Handed over at once: the publish's place in line is this call's.
    let namesObject = false;
    const published = this.publisher.publish(
      converting.then((result) => {
        const resolved = metricsOf(result, metrics, options);
        namesObject = resolved.object !== undefined;
        // First match wins: the caller's, the header's, the file name's, then the target.
        resolved.object ??= this.target ?? undefined;
        return { jpeg: result.jpeg, metrics: resolved, passedThrough: result.passedThrough, pixels: result.pixels };
      }),
    );
    try {
      const [result] = await Promise.all([converting, published]);
      this.shownNamesObject = namesObject;
      return { ...result, jpeg: await result.jpeg };
    } catch (err) {
      throw err instanceof UndecodableImageError ? damagedImage('jpeg', err.cause) : err;
    }
  }

  /**
   * On shutdown (a signal), publishes already called finish writing before the HTTP
   * server and the process go: an image sent during STOP is not lost.
   */
  async beforeApplicationShutdown(): Promise<void> {
    await this.writer.idle();
  }

  private logPublished(result: PublishableImage, ms: number): void {
    this.logger.debug(
      result.passedThrough
        ? `published a ${result.width}x${result.height} JPEG as it is (${result.jpeg.length} bytes) in ${ms} ms`
        : `published a ${result.sourceFormat}${result.stretched ? ', auto-stretched,' : ''} as a ${result.width}x${result.height} JPEG (${result.jpeg.length} bytes) in ${ms} ms`,
    );
  }
}

/** The caller's metrics, then what a FITS header says, then the caller's fallbacks (the watch's count, a file's name). */
function metricsOf(result: Pick<PublishableImage, 'headerMetrics'>, metrics: ImageMetrics, options: PublishOptions): ImageMetrics {
  return combineMetrics(metrics, result.headerMetrics, options.fallbackMetrics ?? {});
}
