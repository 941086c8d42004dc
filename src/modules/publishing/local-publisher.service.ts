import { Injectable } from '@nestjs/common';
import type { SessionMetrics } from '../web-assets/web-assets.service.js';
import type { PreparedImage, Publisher } from './publisher.js';
import { VersionWriter } from './version-writer.service.js';

/** One process, nothing shared: versions come from this web folder's own counter. */
@Injectable()
export class LocalPublisher implements Publisher {
  readonly checksPixels = true;

  constructor(private readonly writer: VersionWriter) {}

  async publish(image: Promise<PreparedImage>): Promise<void> {
    await this.writer.writeImage(this.writer.cut(image));
  }

  publishMetrics(metrics: SessionMetrics): Promise<void> {
    return this.writer.writeMetrics(metrics);
  }
}
