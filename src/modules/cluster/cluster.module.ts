import { Module } from '@nestjs/common';
import { ImageGatewayModule } from '../../gateway/image-gateway.module.js';
import { LifecycleModule } from '../lifecycle/lifecycle.module.js';
import { MetricsModule } from '../metrics/metrics.module.js';
import { WebAssetsModule } from '../web-assets/web-assets.module.js';
import { ClusterPublisher } from './cluster-publisher.service.js';
import { ClusterService } from './cluster.service.js';

/**
 * Scale-out on Redis: global versions, each version's image, announcements and catch-up.
 * Always imported and inert without `redisUrl` (the redis package is loaded only with it).
 * Sits below ImageNotifier, which hands it checked JPEGs; StatusModule reads its state.
 */
@Module({
  imports: [WebAssetsModule, ImageGatewayModule, LifecycleModule, MetricsModule],
  providers: [ClusterService, ClusterPublisher],
  exports: [ClusterService, ClusterPublisher],
})
export class ClusterModule {}
