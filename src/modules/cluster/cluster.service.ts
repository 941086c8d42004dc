import { Inject, Injectable, Optional, type OnApplicationShutdown } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';
import { RedisBus, type RedisState } from './redis-bus.service.js';

/**
 * Optional provider: the highest version this replica keeps on disk (its highest
 * `/v/<n>`), so a Redis that restarted empty never hands out a version again.
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
export class ClusterService implements OnApplicationShutdown {
  /** hostname-pid-random: unique per process, readable in logs and /status. */
  readonly replicaId = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  /** The bus, or undefined without `redisUrl` (one process, nothing shared). */
  readonly bus: RedisBus | undefined;

  constructor(
    @Inject(IMAGE_SERVER_OPTIONS) options: ImageServerOptions,
    @Optional() @Inject(LOCAL_VERSION_FLOOR) floor?: LocalVersionFloor,
  ) {
    if (options.redisUrl !== undefined) {
      this.bus = new RedisBus({
        url: options.redisUrl,
        namespace: options.redisNamespace,
        replicaId: this.replicaId,
        highestLocalVersion: floor,
      });
    }
  }

  get enabled(): boolean {
    return this.bus !== undefined;
  }

  /** For `/status`: undefined when not clustered. */
  status(): ClusterStatus | undefined {
    return this.bus && { redis: this.bus.state, replica: this.replicaId };
  }

  async onApplicationShutdown(): Promise<void> {
    await this.bus?.close();
  }
}
