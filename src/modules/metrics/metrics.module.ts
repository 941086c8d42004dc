import { Module } from '@nestjs/common';
import { MetricsService } from './metrics.service.js';

/**
 * Prometheus metrics of this process. Low in the graph: it imports nothing, so the gateway,
 * the publish path, the cluster and `/metrics` (StatusModule) all inject the one service.
 */
@Module({
  providers: [MetricsService],
  exports: [MetricsService],
})
export class MetricsModule {}
