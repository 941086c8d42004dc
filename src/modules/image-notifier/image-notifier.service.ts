import { Injectable, Logger, Optional, type BeforeApplicationShutdown } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import { BroadcastService } from '../../gateway/broadcast.service.js';
import { MetricsService } from '../status/metrics.service.js';
import { WebAssetsService, type SessionMetrics } from '../web-assets/web-assets.service.js';
import { ImageConverter } from './image-converter.service.js';

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
}

/**
 * Where publishes go instead of this process's files (the cluster: REDIS_URL). The route
 * comes back to this process through {@link ImageNotifier.publishLocal}.
 */
export interface PublishRoute {
  publish(image: Buffer, metrics?: ImageMetrics, options?: PublishOptions): Promise<void>;
  updateMetrics(metrics: ImageMetrics): Promise<void>;
  notifyNewImage(): Promise<void>;
}

/**
 * Publishes images to every viewer. Inject it in any provider of an app that imports
 * `ImageServerModule`. Publishes land in call order: the image on disk and data.json
 * always belong to the same call, and `new_image` goes out only once both are written.
 */
@Injectable()
export class ImageNotifier implements BeforeApplicationShutdown {
  private readonly logger = new Logger(ImageNotifier.name);
  /** Settles once the latest publish has queued its write (or failed before it). */
  private lastInLine: Promise<void> = Promise.resolve();
  private route: PublishRoute | undefined;

  constructor(
    private readonly assets: WebAssetsService,
    private readonly broadcast: BroadcastService,
    private readonly converter: ImageConverter,
    @Optional() private readonly metrics?: MetricsService,
  ) {}

  /**
   * Publishes a JPEG, PNG or TIFF (8 or 16 bits per channel, grey or colour): writes it as
   * web_image.jpg and the metrics to data.json (both atomically), then broadcasts
   * `{"type":"new_image"}`. A JPEG within `maxImageSize` is written byte for byte; other
   * images are converted (orientation applied, downsized to `maxImageSize`, JPEG quality
   * `jpegQuality`). Metrics left out keep their current values.
   *
   * An image it cannot use (another format, damaged, truncated) is refused with an
   * `ImageRejectedError` and nothing on disk changes; bad metrics throw
   * `InvalidMetricsError`, also before anything is written. See {@link PublishOptions}
   * for how thoroughly a JPEG passed through is checked.
   */
  publish(image: Buffer, metrics?: ImageMetrics, options: PublishOptions = {}): Promise<void> {
    if (this.route) {
      return this.route.publish(image, metrics, options);
    }
    const began = performance.now();
    return this.publishLocal(image, metrics, options).then(
      () => this.metrics?.recordPublish((performance.now() - began) / 1000),
      (err: unknown) => {
        this.metrics?.recordPublish(0, 'rejected');
        throw err;
      },
    );
  }

  /** Set once by the cluster (REDIS_URL): publishes then go through Redis to every replica. */
  routeThrough(route: PublishRoute): void {
    this.route = route;
  }

  /** {@link publish} on this process's files only: the cluster applies each version with it. */
  publishLocal(image: Buffer, metrics?: ImageMetrics, options: PublishOptions = {}): Promise<void> {
    return this.publishImage(image, metrics, (options.verify ?? 'full') === 'full');
  }

  private async publishImage(image: Buffer, metrics: ImageMetrics | undefined, verifyPixels: boolean): Promise<void> {
    const began = performance.now();
    // Conversion starts at once, outside the write queue, so uploads convert side by side;
    // the writes still happen in call order (see `inLine`).
    const converting = this.converter.toPublishable(image, { verifyPixels });
    const result = await this.inLine(converting, (ready) => this.writeThenAnnounce(() => this.assets.writeImage(ready.jpeg, metrics)));
    const ms = Math.round(performance.now() - began);
    this.logger.debug(
      result.passedThrough
        ? `published a ${result.width}x${result.height} JPEG as it is (${result.jpeg.length} bytes) in ${ms} ms`
        : `published a ${result.sourceFormat} as a ${result.width}x${result.height} JPEG (${result.jpeg.length} bytes) in ${ms} ms`,
    );
  }

  /**
   * Rewrites data.json with new metrics, then broadcasts `new_image` so viewers refresh it.
   * It takes its turn after the publishes called before it.
   */
  async updateMetrics(metrics: ImageMetrics): Promise<void> {
    await (this.route ? this.route.updateMetrics(metrics) : this.updateMetricsLocal(metrics));
  }

  /** {@link updateMetrics} on this process's files only. */
  async updateMetricsLocal(metrics: ImageMetrics): Promise<void> {
    await this.inLine(Promise.resolve(null), () => this.writeThenAnnounce(() => this.assets.writeMetrics(metrics)));
  }

  /**
   * For a caller that wrote web_image.jpg into the web folder itself: takes it in and
   * broadcasts. It takes its turn after the publishes called before it.
   */
  async notifyNewImage(): Promise<void> {
    if (this.route) {
      return this.route.notifyNewImage();
    }
    await this.inLine(Promise.resolve(null), () => this.writeThenAnnounce(() => this.assets.reloadImageFromDisk()));
  }

  /**
   * On shutdown (a signal), publishes already called finish writing before the HTTP
   * server and the process go: an image sent during STOP is not lost.
   */
  async beforeApplicationShutdown(): Promise<void> {
    await this.lastInLine;
    await this.assets.exclusive(() => Promise.resolve());
  }

  /** Writes (in the web folder's queue), then tells every viewer: `new_image` only once the files are there. */
  private writeThenAnnounce(write: () => Promise<void>): Promise<void> {
    return this.assets.exclusive(async () => {
      await write();
      this.broadcast.broadcast({ type: 'new_image' });
    });
  }

  /**
   * Conversions run side by side, but each publish waits until every earlier one has
   * queued its write before queuing its own: with A then B, B's image is the one left on
   * disk even when B converts faster. A failed conversion gives its turn up at once.
   */
  private async inLine<T>(converting: Promise<T>, write: (ready: T) => Promise<void>): Promise<T> {
    // Its rejection is taken below, maybe only after earlier publishes; not unhandled meanwhile.
    void converting.catch(() => undefined);
    const previous = this.lastInLine;
    let queued!: () => void;
    this.lastInLine = new Promise<void>((resolve) => (queued = resolve));
    let ready: T;
    let writing: Promise<void>;
    try {
      await previous;
      ready = await converting;
      // Queued synchronously here, before `queued()` lets the next publish queue its own.
      writing = write(ready);
    } finally {
      queued();
    }
    await writing;
    return ready;
  }
}
