import { Injectable, Logger, type BeforeApplicationShutdown } from '@nestjs/common';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { BroadcastService } from '../../gateway/broadcast.service.js';
import { ClusterPublisher } from '../cluster/cluster-publisher.service.js';
import { ClusterUnavailableError } from '../cluster/cluster-unavailable.error.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { assertMetrics, IMAGE_FILE, WebAssetsService, type SessionMetrics } from '../web-assets/web-assets.service.js';
import { ImageConverter, type PublishableImage } from './image-converter.service.js';
import type { ImageFormat } from './image-format.js';

/** Metrics that go with an image: absolute values of the stack now, not increments. */
export type ImageMetrics = SessionMetrics;

/** How {@link ImageNotifier.publish} checks an image. */
export interface PublishOptions {
  /**
   * How a JPEG published as it is gets checked. `'full'` (the default) decodes every block,
   * so a file cut in the middle or overwritten in place while it was read is refused.
   * `'header'` checks its signature, a full decode of its header and its end marker only:
   * for a buffer your own code just encoded in memory, it saves ~35 ms of CPU on a 3 MB
   * JPEG. Converted images (PNG, TIFF, large or rotated JPEGs) are always decoded whole.
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
 * With `redisUrl`, step 2 goes through Redis, so every replica writes and announces it.
 */
@Injectable()
export class ImageNotifier implements BeforeApplicationShutdown {
  private readonly logger = new Logger(ImageNotifier.name);

  constructor(
    private readonly assets: WebAssetsService,
    private readonly broadcast: BroadcastService,
    private readonly converter: ImageConverter,
    private readonly cluster: ClusterPublisher,
    private readonly metrics: MetricsService,
  ) {}

  /**
   * Publishes a JPEG, PNG, TIFF or FITS (8 to 32 bits per channel, grey or colour): writes
   * it as web_image.jpg and the metrics to data.json (both atomically), then broadcasts
   * `{"type":"new_image"}`. A JPEG within `maxImageSize` is written byte for byte; other
   * images are converted (orientation applied, linear data auto-stretched per the `stretch`
   * option, downsized to `maxImageSize`, JPEG quality `jpegQuality`). Metrics left out come
   * from a FITS header (stack size, exposure) when it has them, else keep their current values.
   *
   * An image it cannot use (another format, damaged, truncated) is refused with an
   * `ImageRejectedError` and nothing on disk changes; bad metrics throw
   * `InvalidMetricsError`, also before anything is written. See {@link PublishOptions}
   * for how thoroughly a JPEG passed through is checked.
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
   * It takes its turn after the publishes called before it.
   */
  async updateMetrics(metrics: ImageMetrics): Promise<void> {
    assertMetrics(metrics);
    if (this.cluster.enabled) {
      return this.cluster.storeMetrics(metrics);
    }
    await this.assets.exclusive(async () => {
      await this.assets.writeMetrics(metrics);
      this.broadcast.broadcast({ type: 'new_image' });
    });
  }

  /**
   * For a caller that wrote web_image.jpg into the web folder itself: takes it in and
   * broadcasts. It takes its turn after the publishes called before it. With `redisUrl`
   * the file is published to every replica.
   */
  async notifyNewImage(): Promise<void> {
    if (this.cluster.enabled) {
      return this.publish(await readFile(join(this.assets.webFolder, IMAGE_FILE)));
    }
    await this.assets.exclusive(async () => {
      await this.assets.reloadImageFromDisk();
      this.broadcast.broadcast({ type: 'new_image' });
    });
  }

  /**
   * On shutdown (a signal), publishes already called finish writing before the HTTP
   * server and the process go: an image sent during STOP is not lost.
   */
  async beforeApplicationShutdown(): Promise<void> {
    await this.assets.drained();
  }

  /** The publish path, top to bottom. */
  private async checkWriteAnnounce(image: Buffer, metrics: ImageMetrics, options: PublishOptions): Promise<PublishableImage> {
    // 1. Check the metrics, and check / convert the image. Conversion starts at once,
    //    outside the write queue, so uploads convert side by side.
    assertMetrics(metrics);
    const converting = this.converter.toPublishable(image, {
      verifyPixels: (options.verify ?? 'full') === 'full',
      declaredFormat: options.declaredFormat,
    });
    // A FITS header's stack size and exposure fill in what the caller left out.
    const withHeader = (result: PublishableImage): ImageMetrics => ({
      ...definedOnly(options.fallbackMetrics ?? {}),
      ...definedOnly(result.headerMetrics),
      ...definedOnly(metrics),
    });
    if (this.cluster.enabled) {
      // 2-3 on every replica: Redis versions it; each replica writes and announces it.
      const result = await converting;
      await this.cluster.store(result.jpeg, withHeader(result));
      return result;
    }
    // Its rejection is taken in its turn below, maybe only after earlier publishes.
    converting.catch(() => undefined);
    // 2. In call order (the web folder's one queue): write both files, then 3. announce.
    return this.assets.exclusive(async () => {
      const result = await converting;
      await this.assets.writeImage(result.jpeg, withHeader(result));
      this.broadcast.broadcast({ type: 'new_image' });
      return result;
    });
  }

  private logPublished(result: PublishableImage, ms: number): void {
    this.logger.debug(
      result.passedThrough
        ? `published a ${result.width}x${result.height} JPEG as it is (${result.jpeg.length} bytes) in ${ms} ms`
        : `published a ${result.sourceFormat}${result.stretched ? ', auto-stretched,' : ''} as a ${result.width}x${result.height} JPEG (${result.jpeg.length} bytes) in ${ms} ms`,
    );
  }
}

/** The metrics actually given: `{ stackSize: undefined }` must not hide a header's value. */
function definedOnly(metrics: ImageMetrics): ImageMetrics {
  const out: ImageMetrics = {};
  if (metrics.stackSize !== undefined) {
    out.stackSize = metrics.stackSize;
  }
  if (metrics.exposureSeconds !== undefined) {
    out.exposureSeconds = metrics.exposureSeconds;
  }
  return out;
}
