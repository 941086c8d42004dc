import { Module } from '@nestjs/common';
import { ViewerGateModule } from '../modules/lifecycle/viewer-gate.module.js';
import { MetricsModule } from '../modules/metrics/metrics.module.js';
import { BroadcastService } from './broadcast.service.js';
import { ImageGateway } from './image.gateway.js';

/** `/ws`: the viewers' sockets (refused with 503 while the gate is closed) and the broadcast to all of them. */
@Module({
  imports: [ViewerGateModule, MetricsModule],
  providers: [BroadcastService, ImageGateway],
  exports: [BroadcastService],
})
export class ImageGatewayModule {}
