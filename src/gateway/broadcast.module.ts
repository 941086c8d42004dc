import { Module } from '@nestjs/common';
import { MetricsModule } from '../modules/metrics/metrics.module.js';
import { BroadcastService } from './broadcast.service.js';

/**
 * The open `/ws` clients and the broadcast to them: what publishing, START / STOP and
 * `/status` use. Internal: an embedding app reaches viewers through `ViewerSessions`.
 */
@Module({
  imports: [MetricsModule],
  providers: [BroadcastService],
  exports: [BroadcastService],
})
export class BroadcastModule {}
