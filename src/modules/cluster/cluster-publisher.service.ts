import { Inject, Injectable, Logger, Optional, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Subscription } from 'rxjs';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';
import { ImageConverter } from '../image-notifier/image-converter.service.js';
import { ImageNotifier, type ImageMetrics, type PublishOptions, type PublishRoute } from '../image-notifier/image-notifier.service.js';
import { ServerLifecycle } from '../lifecycle/server-lifecycle.service.js';
import { MetricsService } from '../status/metrics.service.js';
import { InvalidMetricsError } from '../web-assets/web-assets.service.js';
import { ClusterService } from './cluster.service.js';
import { ClusterUnavailableError } from './cluster-unavailable.error.js';
import type { ClusterUpdate } from './redis-bus.service.js';

/** How long a publish waits for its own version to be applied on this replica. */
const APPLY_TIMEOUT_MS = 15_000;

function checkMetrics({ stackSize, exposureSeconds }: ImageMetrics): void {
  if (stackSize !== undefined && (!Number.isSafeInteger(stackSize) || stackSize < 0)) {
    throw new InvalidMetricsError(`stackSize must be an integer ≥ 0, got ${String(stackSize)}`);
  }
  if (exposureSeconds !== undefined && (!Number.isFinite(exposureSeconds) || exposureSeconds < 0)) {
    throw new InvalidMetricsError(`exposureSeconds must be a number ≥ 0, got ${String(exposureSeconds)}`);
  }
}

/**
 * With `redisUrl`: ImageNotifier's publishes go through Redis instead of straight to
 * this replica's files. Publish: check and convert here, store in Redis (a global
 * version), then wait until this replica applied it. Apply (every replica, the publisher
 * included): each update from the bus is written locally and broadcast, in order.
 */
@Injectable()
export class ClusterPublisher implements PublishRoute, OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ClusterPublisher.name);
  private appliedVersion = 0;
  private appliedImageVersion: number | null = null;
  private readonly waiters = new Set<{ version: number; settle: (err?: Error) => void }>();
  private applying: Promise<void> = Promise.resolve();
  private subscription: Subscription | undefined;

  constructor(
    private readonly cluster: ClusterService,
    private readonly notifier: ImageNotifier,
    private readonly converter: ImageConverter,
    private readonly lifecycle: ServerLifecycle,
    @Inject(IMAGE_SERVER_OPTIONS) private readonly options: ImageServerOptions,
    @Optional() private readonly metrics?: MetricsService,
  ) {}

  /** The version this replica serves now (0 before the first). */
  get version(): number {
    return this.appliedVersion;
  }

  async onApplicationBootstrap(): Promise<void> {
    const bus = this.cluster.bus;
    if (!bus) {
      return;
    }
    this.notifier.routeThrough(this);
    // START writes the waiting image: versions are applied only after it (a no-op if done).
    await this.lifecycle.start();
    this.subscription = bus.updates$.subscribe((update) => {
      this.applying = this.applying.then(() => this.apply(update));
    });
    bus.start();
  }

  async onApplicationShutdown(): Promise<void> {
    this.subscription?.unsubscribe();
    await this.applying;
  }

  async publish(image: Buffer, metrics: ImageMetrics = {}, options: PublishOptions = {}): Promise<void> {
    const began = performance.now();
    try {
      checkMetrics(metrics);
      const ready = await this.converter.toPublishable(image, { verifyPixels: (options.verify ?? 'full') === 'full' });
      await this.throughRedis(() => this.bus().publish(ready.jpeg, metrics));
      this.metrics?.recordPublish((performance.now() - began) / 1000);
    } catch (err) {
      this.metrics?.recordPublish(0, err instanceof ClusterUnavailableError ? 'unavailable' : 'rejected');
      throw err;
    }
  }

  async updateMetrics(metrics: ImageMetrics): Promise<void> {
    checkMetrics(metrics);
    await this.throughRedis(() => this.bus().updateMetrics(metrics));
  }

  /** The caller wrote web_image.jpg into this replica's web folder: share it with the others. */
  async notifyNewImage(): Promise<void> {
    const image = await readFile(join(this.options.webFolder, 'web_image.jpg'));
    await this.publish(image);
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
    const version = await store();
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

  /** One update from the bus: the image when it changed (else the metrics), then `new_image`. */
  private async apply(update: ClusterUpdate): Promise<void> {
    let failure: Error | undefined;
    try {
      if (update.image !== null && update.imageVersion !== this.appliedImageVersion) {
        // Checked whole where it was published; here it only needs its envelope checked.
        await this.notifier.publishLocal(update.image, update.metrics, { verify: 'header' });
        this.appliedImageVersion = update.imageVersion;
      } else {
        await this.notifier.updateMetricsLocal(update.metrics);
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
