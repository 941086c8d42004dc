import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';
import { MetricsService } from '../metrics/metrics.service.js';
import type { RedisBus, RedisState } from './redis-bus.service.js';

/**
 * The highest version this replica has seen or keeps on disk (ClusterModule provides it
 * from the VersionStore), so a Redis that restarted empty never hands out a version again.
 */
export const LOCAL_VERSION_FLOOR = 'STACKCAST_LOCAL_VERSION_FLOOR';
export type LocalVersionFloor = () => number;

/** `/status`'s `cluster` field. */
export interface ClusterStatus {
  redis: RedisState;
  replica: string;
}

/**
 * Owns this replica's {@link RedisBus} when `redisUrl` is set (and nothing otherwise).
 * {@link ClusterPublisher} starts it once START wrote the files; it closes at shutdown.
 */
@Injectable()
export class ClusterService implements OnModuleInit, OnApplicationShutdown {
  /** hostname-pid-random: unique per process, readable in logs and /status. */
  readonly replicaId = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  private redisBus: RedisBus | undefined;

  constructor(
    @Inject(IMAGE_SERVER_OPTIONS) private readonly options: ImageServerOptions,
    metrics: MetricsService,
    @Inject(LOCAL_VERSION_FLOOR) private readonly floor: LocalVersionFloor,
  ) {
    if (this.enabled) {
      metrics.gauge('stackcast_redis_up', '1 while this replica reaches Redis (both connections), 0 otherwise', () =>
        this.redisBus?.state === 'up' ? 1 : 0,
      );
    }
  }

  /** True with `redisUrl`. */
  get enabled(): boolean {
    return this.options.redisUrl !== undefined;
  }

  /** The bus (from init on), or undefined without `redisUrl` (one process, nothing shared). */
  get bus(): RedisBus | undefined {
    return this.redisBus;
  }

  /** For `/status`: undefined when not clustered. */
  status(): ClusterStatus | undefined {
    return this.enabled ? { redis: this.redisBus?.state ?? 'down', replica: this.replicaId } : undefined;
  }

  /** The Redis client is loaded only when used: a single process does not pay for it. */
  async onModuleInit(): Promise<void> {
    const url = this.options.redisUrl;
    if (url === undefined) {
      return;
    }
    const { RedisBus } = await import('./redis-bus.service.js');
    this.redisBus = new RedisBus({ url, namespace: this.options.redisNamespace, replicaId: this.replicaId, highestLocalVersion: this.floor });
  }

  async onApplicationShutdown(): Promise<void> {
    await this.bus?.close();
  }
}
