import { Module } from '@nestjs/common';
import { MetricsModule } from '../metrics/metrics.module.js';
import { PublishingModule } from '../publishing/publishing.module.js';
import { VersionStore } from '../web-assets/version-store.js';
import { WebAssetsModule } from '../web-assets/web-assets.module.js';
import { ClusterPublisher } from './cluster-publisher.service.js';
import { ClusterService, LOCAL_VERSION_FLOOR, type LocalVersionFloor } from './cluster.service.js';

/**
 * Scale-out on Redis: global versions, each version's image, announcements and catch-up.
 * Always imported and inert without `redisUrl` (the redis package is loaded only with it).
 * Its ClusterPublisher is ImageNotifier's Publisher in that mode; StatusModule reads its state.
 */
@Module({
  imports: [WebAssetsModule, PublishingModule, MetricsModule],
  providers: [
    ClusterService,
    ClusterPublisher,
    // Versions on this replica's disk (and those it applied) are never handed out again by Redis.
    { provide: LOCAL_VERSION_FLOOR, useFactory: (versions: VersionStore): LocalVersionFloor => () => versions.current, inject: [VersionStore] },
  ],
  exports: [ClusterService, ClusterPublisher],
})
export class ClusterModule {}
