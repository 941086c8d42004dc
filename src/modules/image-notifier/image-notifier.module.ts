import { Module } from '@nestjs/common';
import { ClusterModule } from '../cluster/cluster.module.js';
import { ControlGuardModule } from '../../shared/control-guard/control-guard.module.js';
import { HttpLimitsModule } from '../../shared/http-limits/http-limits.module.js';
import { MetricsModule } from '../metrics/metrics.module.js';
import { PublishingModule } from '../publishing/publishing.module.js';
import { WebAssetsModule } from '../web-assets/web-assets.module.js';
import { ImageConverter } from './image-converter.service.js';
import { ImageNotifier } from './image-notifier.service.js';
import { ImageUploadController } from './image-upload.controller.js';
import { TargetController } from './target.controller.js';
import { ScopeController } from './scope.controller.js';
import { ScopeHooksModule } from '../../shared/scope-hooks/scope-hooks.module.js';

/**
 * The publish path: {@link ImageNotifier} (check / convert, then the mode's Publisher) and
 * `PUT /api/image`. The Publisher is local, or with `redisUrl` ClusterModule's, through Redis
 * to every replica; both write through PublishingModule's VersionWriter.
 */
@Module({
  // ControlGuard on PUT /api/image, HttpLimits for its refusal log.
  imports: [WebAssetsModule, PublishingModule, ControlGuardModule, HttpLimitsModule, ClusterModule, MetricsModule, ScopeHooksModule],
  providers: [ImageConverter, ImageNotifier],
  controllers: [ImageUploadController, TargetController, ScopeController],
  exports: [ImageNotifier],
})
export class ImageNotifierModule {}
