import { Module } from '@nestjs/common';
import { ClusterPublisher } from './cluster-publisher.service.js';
import { ClusterService } from './cluster.service.js';

/** Providers of the cluster feature: inert without `redisUrl`. */
export const CLUSTER_PROVIDERS = [ClusterService, ClusterPublisher];

/**
 * Scale-out on Redis (only active when `redisUrl` is set): global versions, the image of
 * each version, announcements and catch-up. Needs `IMAGE_SERVER_OPTIONS`, `ImageNotifier`,
 * `ImageConverter` and (optionally) `MetricsService` from the modules around it.
 */
@Module({ providers: CLUSTER_PROVIDERS, exports: CLUSTER_PROVIDERS })
export class ClusterModule {}
