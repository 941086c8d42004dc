import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Subscription } from 'rxjs';
import { BroadcastService } from '../../gateway/broadcast.service.js';
import { ServerLifecycle } from '../lifecycle/server-lifecycle.service.js';
import { PyramidBuilder, type PreparedPyramid } from '../web-assets/pyramid.js';
import { VersionStore } from '../web-assets/version-store.js';
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
    private readonly versions: VersionStore,
    private readonly pyramids: PyramidBuilder,
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
   * One update from the bus: the image when it changed (its pyramid cut first, out of the
   * queue), else the metrics; then `new_image`. Files, data.json's VERSION and `/v/<n>/` use
   * Redis's version of the image; the local counter moves up to the update's version.
   */
  private async apply(update: ClusterUpdate): Promise<void> {
    let failure: Error | undefined;
    let pyramid: PreparedPyramid | undefined;
    try {
      const { image } = update;
      const imageVersion = update.imageVersion ?? 0;
      // After a restart with RESUME, the version on disk may be the one announced.
      const shown = this.appliedImageVersion ?? this.assets.session.version;
      if (image !== null && imageVersion !== shown) {
        pyramid = await this.assets.written(() => this.pyramids.prepare(image));
      }
      await this.assets.exclusive(async () => {
        await this.versions.advanceTo(update.version);
        const prepared = pyramid;
        if (prepared && image !== null) {
          await this.assets.written(() => prepared.commit(imageVersion));
          pyramid = undefined;
          await this.assets.writeImage(image, update.metrics, imageVersion);
          this.appliedImageVersion = imageVersion;
        } else {
          await this.assets.writeMetrics(update.metrics);
        }
        const { version } = this.assets.session;
        this.broadcast.broadcast(version === null ? { type: 'new_image' } : { type: 'new_image', version });
      });
      this.pyramids.pruneInBackground((err) => this.logger.warn(`could not remove old versions: ${err.message}`));
    } catch (err) {
      await pyramid?.discard().catch(() => undefined);
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
