import { Injectable } from '@nestjs/common';
import { WebFolderError, type SessionMetrics } from '../web-assets/web-assets.service.js';
import type { PreparedImage, Publisher } from './publisher.js';
import { VersionWriter } from './version-writer.service.js';

/** One process, nothing shared: versions come from this web folder's own counter. */
@Injectable()
export class LocalPublisher implements Publisher {
  readonly checksPixels = true;

  constructor(private readonly writer: VersionWriter) {}

  async publish(image: Promise<PreparedImage>): Promise<void> {
    try {
      await this.writer.writeImage(this.writer.cut(image));
    } catch (err) {
      // A full disk: old versions go (they are pruned only after a publish that worked), then one more try.
      if (!(err instanceof WebFolderError && err.problem === 'full') || (await this.writer.makeRoom()).length === 0) {
        throw err;
      }
      await this.writer.writeImage(this.writer.cut(image));
    }
  }

  publishMetrics(metrics: SessionMetrics): Promise<void> {
    return this.writer.writeMetrics(metrics);
  }
}
