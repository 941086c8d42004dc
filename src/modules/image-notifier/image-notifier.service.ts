import { Injectable, Logger } from '@nestjs/common';
import { BroadcastService } from '../../gateway/broadcast.service.js';
import { WebAssetsService, type SessionMetrics } from '../web-assets/web-assets.service.js';
import { assertCompleteJpeg } from './jpeg-check.js';

/** Metrics that go with an image: absolute values of the stack now, not increments. */
export type ImageMetrics = SessionMetrics;

/**
 * Publishes images to every viewer. Inject it in any provider of an app that imports
 * `ImageServerModule`. Calls are serialized: the image on disk and data.json always
 * belong to the same call, and `new_image` goes out only once both are written.
 */
@Injectable()
export class ImageNotifier {
  private readonly logger = new Logger(ImageNotifier.name);

  constructor(
    private readonly assets: WebAssetsService,
    private readonly broadcast: BroadcastService,
  ) {}

  /**
   * Writes `image` as web_image.jpg and the metrics to data.json (both atomically), then
   * broadcasts `{"type":"new_image"}`. Metrics left out keep their current values.
   * An image it cannot use (not a JPEG, damaged, truncated) is refused with an
   * `ImageRejectedError` and nothing on disk changes; bad metrics throw
   * `InvalidMetricsError`, also before anything is written.
   */
  async publish(image: Buffer, metrics?: ImageMetrics): Promise<void> {
    await assertCompleteJpeg(image);
    await this.assets.exclusive(async () => {
      await this.assets.writeImage(image, metrics);
      this.broadcast.broadcast({ type: 'new_image' });
    });
    this.logger.debug(`published ${image.length} bytes`);
  }

  /** Rewrites data.json with new metrics, then broadcasts `new_image` so viewers refresh it. */
  async updateMetrics(metrics: ImageMetrics): Promise<void> {
    await this.assets.exclusive(async () => {
      await this.assets.writeMetrics(metrics);
      this.broadcast.broadcast({ type: 'new_image' });
    });
  }

  /** For a caller that wrote web_image.jpg into the web folder itself: takes it in and broadcasts. */
  async notifyNewImage(): Promise<void> {
    await this.assets.exclusive(async () => {
      await this.assets.reloadImageFromDisk();
      this.broadcast.broadcast({ type: 'new_image' });
    });
  }
}
