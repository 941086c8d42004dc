import { Module } from '@nestjs/common';
import { HttpLimitsModule } from '../shared/http-limits/http-limits.module.js';
import { ControlGuardModule } from '../shared/control-guard/control-guard.module.js';
import { ViewerGateModule } from '../shared/viewer-gate/viewer-gate.module.js';
import { MetricsModule } from '../modules/metrics/metrics.module.js';
import { WebAssetsModule } from '../modules/web-assets/web-assets.module.js';
import { BroadcastModule } from './broadcast.module.js';
import { ImageGateway } from './image.gateway.js';
import { ViewerSessionsController } from './viewer-sessions.controller.js';
import { ViewerSessions } from './viewer-sessions.service.js';

/**
 * `/ws`: the viewers' sockets (refused with 503 while the gate is closed), the broadcast to
 * all of them, their sessions and notices, and the guarded `/api/clients` / `/api/messages` routes.
 */
@Module({
  // WebAssetsModule for CURRENT_VERSION (hello.version).
  imports: [BroadcastModule, ViewerGateModule, ControlGuardModule, HttpLimitsModule, WebAssetsModule, MetricsModule],
  providers: [ViewerSessions, ImageGateway],
  controllers: [ViewerSessionsController],
  // The public one (re-exported by ImageServerModule); the broadcast stays internal.
  exports: [ViewerSessions],
})
export class ImageGatewayModule {}
