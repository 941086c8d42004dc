import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Subscription } from 'rxjs';
import { SerialQueue } from '../../common/serial-queue.js';
import type { PreparedImage, Publisher } from '../publishing/publisher.js';
import { VersionWriter } from '../publishing/version-writer.service.js';
import { WebAssetsService, type SessionMetrics } from '../web-assets/web-assets.service.js';
import { ClusterService } from './cluster.service.js';
import { ClusterUnavailableError } from './cluster-unavailable.error.js';
import type { ClusterUpdate } from './redis-bus.service.js';

/** How long a publish waits for its own version to be applied on this replica. */
const APPLY_TIMEOUT_MS = 15_000;

/**
 * With `redisUrl`, the {@link Publisher}: Redis gives each image a global version and
 * announces it; every replica (the publisher included) applies each version from the bus
 * in order through the one VersionWriter, and {@link publish} resolves once this replica
 * applied it. Images are stored only once checked whole (see `checksPixels`).
 */
@Injectable()
export class ClusterPublisher implements Publisher, OnApplicationBootstrap, OnApplicationShutdown {
  /** The image is stored in Redis before any pyramid is cut: the caller decodes it whole first. */
  readonly checksPixels = false;
  private readonly logger = new Logger(ClusterPublisher.name);
  private appliedVersion = 0;
  private appliedImageVersion: number | null = null;
  private readonly waiters = new Set<{ version: number; settle: (err?: Error) => void }>();
  private applying: Promise<void> = Promise.resolve();
  private subscription: Subscription | undefined;
  private closed = false;
  /** Stores go to Redis in call order, so versions follow the calls. */
  private readonly storing = new SerialQueue();

  constructor(
    private readonly cluster: ClusterService,
    private readonly assets: WebAssetsService,
    private readonly writer: VersionWriter,
  ) {}

  /** True with `redisUrl`. */
  get enabled(): boolean {
    return this.cluster.enabled;
  }

  /** The version this replica serves now (0 before the first). */
  get version(): number {
    return this.appliedVersion;
  }

  onApplicationBootstrap(): void {
    const bus = this.cluster.bus;
    if (!bus) {
      return;
    }
    // After START's files (and the version floor read from disk): not awaited here, since
    // START itself runs in a bootstrap hook that may come after this one.
    this.assets.ready
      .then(() => {
        if (this.closed) {
          return;
        }
        this.subscription = bus.updates$.subscribe((update) => {
          this.applying = this.applying.then(() => this.apply(update));
        });
        bus.start();
      })
      .catch((err: unknown) => this.logger.error(`the Redis bus did not start: ${(err as Error).message}`));
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    this.subscription?.unsubscribe();
    await this.applying;
    // Publishes stored but not applied here will not be: answer them now, not after 15 s.
    for (const waiter of this.waiters) {
      waiter.settle(new ClusterUnavailableError(`version ${waiter.version} is stored but this replica is shutting down`));
    }
    this.waiters.clear();
  }

  /** A checked, converted JPEG: stored in Redis under a new global version, resolved once applied here. */
  publish(image: Promise<PreparedImage>): Promise<void> {
    // Its rejection is taken in its turn, maybe only after earlier stores.
    image.catch(() => undefined);
    return this.throughRedis(async () => {
      const { jpeg, metrics } = await image;
      return this.bus().publish(await jpeg, metrics);
    });
  }

  /** Checked metrics for the current image, as a new version. */
  publishMetrics(metrics: SessionMetrics): Promise<void> {
    return this.throughRedis(() => this.bus().updateMetrics(metrics));
  }

  private bus(): NonNullable<ClusterService['bus']> {
    const bus = this.cluster.bus;
    if (!bus) {
      throw new Error('ClusterPublisher used without redisUrl');
    }
    return bus;
  }

  /** Stores through Redis, then waits for this replica to have applied that version (or a newer one). */
  private async throughRedis(store: () => Promise<number>): Promise<void> {
    const version = await this.storing.run(store);
    if (this.appliedVersion >= version) {
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const waiter = {
        version,
        settle: (err?: Error) => {
          clearTimeout(timer);
          if (err) {
            reject(err);
          } else {
            resolve();
          }
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new ClusterUnavailableError(`version ${version} is stored but was not applied here within ${APPLY_TIMEOUT_MS / 1000} s`));
      }, APPLY_TIMEOUT_MS);
      this.waiters.add(waiter);
    });
  }

  /**
   * One update from the bus: the image when it changed (its pyramid cut first, out of the
   * queue), else the metrics, through the VersionWriter. Files, data.json's VERSION and
   * `/v/<n>/` use Redis's version of the image; the local counter moves up to the update's.
   */
  private async apply(update: ClusterUpdate): Promise<void> {
    let failure: Error | undefined;
    try {
      const { image } = update;
      const imageVersion = update.imageVersion ?? 0;
      // After a restart with RESUME, the version on disk may be the one announced.
      const shown = this.appliedImageVersion ?? this.writer.shown;
      if (image !== null && imageVersion !== shown) {
        const cutting = this.writer.cut({ jpeg: image, metrics: update.metrics, passedThrough: true });
        // Relayed by the replica that took the publish only: the hub gets each version once, in order.
        const own = [...this.waiters].some((waiter) => waiter.version === update.version);
        await this.writer.writeImage(cutting, { image: imageVersion, counter: update.version }, own);
        this.appliedImageVersion = imageVersion;
      } else {
        await this.writer.writeMetrics(update.metrics, update.version);
      }
    } catch (err) {
      failure = new Error(`version ${update.version} is stored in Redis but could not be applied here: ${(err as Error).message}`);
      this.logger.error(failure.message);
    }
    this.appliedVersion = update.version;
    for (const waiter of this.waiters) {
      if (waiter.version <= update.version) {
        this.waiters.delete(waiter);
        waiter.settle(failure);
      }
    }
  }
}
