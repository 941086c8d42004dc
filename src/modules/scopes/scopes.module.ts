import { Module } from '@nestjs/common';
import { BroadcastModule } from '../../gateway/broadcast.module.js';
import { ControlGuardModule } from '../../shared/control-guard/control-guard.module.js';
import { ScopeHooksModule } from '../../shared/scope-hooks/scope-hooks.module.js';
import { ClusterModule } from '../cluster/cluster.module.js';
import { ImageNotifierModule } from '../image-notifier/image-notifier.module.js';
import { MetricsModule } from '../metrics/metrics.module.js';
import { LifecycleModule } from '../lifecycle/lifecycle.module.js';
import { WebAssetsModule } from '../web-assets/web-assets.module.js';
import { ScopesController } from './scopes.controller.js';
import { ScopesService } from './scopes.service.js';

/**
 * Several telescopes on one service: `/s/<id>/...` served by one app per scope,
 * `DELETE /s/<id>`, `GET /api/scopes` and {@link ScopesService} (the list and its changes,
 * for a lobby). Inert in a scope's own app.
 */
@Module({
  imports: [ScopeHooksModule, ImageNotifierModule, WebAssetsModule, BroadcastModule, ControlGuardModule, ClusterModule, MetricsModule, LifecycleModule],
  providers: [ScopesService],
  controllers: [ScopesController],
  exports: [ScopesService],
})
export class ScopesModule {}
