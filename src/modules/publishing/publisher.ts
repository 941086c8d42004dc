import type { SourcePixels } from '../web-assets/pyramid.js';
import type { SessionMetrics } from '../web-assets/web-assets.service.js';

/** An image ready to become a version: checked, converted to the JPEG to serve, its metrics resolved. */
export interface PreparedImage {
  /** Still encoding (from `pixels`) when a promise: the pyramid's home levels are cut meanwhile. */
  jpeg: Buffer | Promise<Buffer>;
  /** The metrics this version shows (absolute values; left out: the current ones). */
  metrics: SessionMetrics;
  /** The JPEG is the caller's bytes as they came (so its pixels are still unchecked). */
  passedThrough: boolean;
  /** The pixels the JPEG is encoded from, at its size, when it is made here: its home levels are cut from them. */
  pixels?: SourcePixels;
}

/**
 * Where a version comes from: this process's own counter (LocalPublisher) or Redis's,
 * shared by every replica (ClusterPublisher). Both end in `VersionWriter`, the one place
 * that writes a version: pyramid in place, files, `new_image`, prune.
 */
export interface Publisher {
  /**
   * Publishes the image as a new version; resolves once it is written and announced here.
   * Takes the image still being prepared: its place in line is the call's, so publishes
   * and metric updates land in call order however long each takes to convert.
   */
  publish(image: Promise<PreparedImage>): Promise<void>;
  /** New metrics for the image shown now, after the publishes called before; resolves once written and announced here. */
  publishMetrics(metrics: SessionMetrics): Promise<void>;
  /**
   * Whether {@link publish} decodes every block of a JPEG passed through (by cutting its
   * pyramid before anything is stored); when false, the caller must check the pixels first.
   */
  readonly checksPixels: boolean;
}

/** The image did not decode while its pyramid was cut (libvips' message as the cause). */
export class UndecodableImageError extends Error {
  override name = 'UndecodableImageError';
}
