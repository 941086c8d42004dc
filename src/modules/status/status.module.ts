import { Module } from '@nestjs/common';
import { BroadcastModule } from '../../gateway/broadcast.module.js';
import { ControlGuardModule } from '../../shared/control-guard/control-guard.module.js';
import { ScopeHooksModule } from '../../shared/scope-hooks/scope-hooks.module.js';
import { ClusterModule } from '../cluster/cluster.module.js';
import { LifecycleModule } from '../lifecycle/lifecycle.module.js';
import { MetricsModule } from '../metrics/metrics.module.js';
import { RelayModule } from '../relay/relay.module.js';
import { SourcesModule } from '../sources/sources.module.js';
import { WebAssetsModule } from '../web-assets/web-assets.module.js';
import { MetricsController, MetricsGuard } from './metrics.controller.js';
import { StatusController } from './status.controller.js';

/**
 * `GET /status`: the state, the advertised address, viewers, metrics, the image source and
 * the cluster; `GET /metrics`: Prometheus text (control auth unless `metricsPublic`).
 */
@Module({
  imports: [LifecycleModule, ControlGuardModule, ScopeHooksModule, BroadcastModule, WebAssetsModule, SourcesModule, ClusterModule, MetricsModule, RelayModule],
  providers: [MetricsGuard],
  controllers: [StatusController, MetricsController],
})
export class StatusModule {}
