import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Subscription } from 'rxjs';
import { BroadcastService } from '../../gateway/broadcast.service.js';
import { ServerLifecycle } from '../lifecycle/server-lifecycle.service.js';
import { WebAssetsService, type SessionMetrics } from '../web-assets/web-assets.service.js';
import { ClusterService } from './cluster.service.js';
import { ClusterUnavailableError } from './cluster-unavailable.error.js';
import type { ClusterUpdate } from './redis-bus.service.js';

/** How long a publish waits for its own version to be applied on this replica. */
const APPLY_TIMEOUT_MS = 15_000;

/**
 * With `redisUrl`, the cluster half of the publish path. ImageNotifier checks and converts,
 * then hands the JPEG to {@link store}: Redis gives it a global version and announces it.
 * Every replica (the publisher included) applies each version from the bus in order:
 * write its files, then `new_image`; {@link store} resolves once this replica applied it.
 */
@Injectable()
export class ClusterPublisher implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ClusterPublisher.name);
  private appliedVersion = 0;
  private appliedImageVersion: number | null = null;
  private readonly waiters = new Set<{ version: number; settle: (err?: Error) => void }>();
  private applying: Promise<void> = Promise.resolve();
  private subscription: Subscription | undefined;

  constructor(
    private readonly cluster: ClusterService,
    private readonly assets: WebAssetsService,
    private readonly broadcast: BroadcastService,
    private readonly lifecycle: ServerLifecycle,
  ) {}

  /** True with `redisUrl`: publishes go through {@link store} / {@link storeMetrics}. */
  get enabled(): boolean {
    return this.cluster.enabled;
  }

  /** The version this replica serves now (0 before the first). */
  get version(): number {
    return this.appliedVersion;
  }

  async onApplicationBootstrap(): Promise<void> {
    const bus = this.cluster.bus;
    if (!bus) {
      return;
    }
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

  /** A checked, converted JPEG: stored in Redis under a new global version, resolved once applied here. */
  store(jpeg: Buffer, metrics: SessionMetrics): Promise<void> {
    return this.throughRedis(() => this.bus().publish(jpeg, metrics));
  }

  /** Checked metrics for the current image, as a new version. */
  storeMetrics(metrics: SessionMetrics): Promise<void> {
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

  /**
   * One update from the bus, in the web folder's queue: the image when it changed (else the
   * metrics), then `new_image`. Versions hook (not on main yet): cut the pyramid of
   * `update.image` before the queue, then inside it `VersionStore.advanceTo(update.version)`,
   * commit the pyramid and write the files as `update.imageVersion`, and announce that version.
   */
  private async apply(update: ClusterUpdate): Promise<void> {
    let failure: Error | undefined;
    try {
      await this.assets.exclusive(async () => {
        if (update.image !== null && update.imageVersion !== this.appliedImageVersion) {
          // Checked whole and converted where it was published.
          await this.assets.writeImage(update.image, update.metrics);
          this.appliedImageVersion = update.imageVersion;
        } else {
          await this.assets.writeMetrics(update.metrics);
        }
        this.broadcast.broadcast({ type: 'new_image' });
      });
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
