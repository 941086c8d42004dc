import { Module } from '@nestjs/common';
import { ImageGatewayModule } from '../../gateway/image-gateway.module.js';
import { ClusterModule } from '../cluster/cluster.module.js';
import { HttpLimitsModule } from '../lifecycle/http-limits.module.js';
import { LifecycleModule } from '../lifecycle/lifecycle.module.js';
import { MetricsModule } from '../metrics/metrics.module.js';
import { WebAssetsModule } from '../web-assets/web-assets.module.js';
import { ImageConverter } from './image-converter.service.js';
import { ImageNotifier } from './image-notifier.service.js';
import { ImageUploadController } from './image-upload.controller.js';

/**
 * The publish path: {@link ImageNotifier} (check / convert, write, announce) and `PUT /api/image`.
 * With `redisUrl` the write and announce go through ClusterModule to every replica.
 */
@Module({
  // LifecycleModule for ControlGuard on PUT /api/image, HttpLimitsModule for its refusal log.
  imports: [WebAssetsModule, ImageGatewayModule, LifecycleModule, HttpLimitsModule, ClusterModule, MetricsModule],
  providers: [ImageConverter, ImageNotifier],
  controllers: [ImageUploadController],
  exports: [ImageNotifier],
})
export class ImageNotifierModule {}
