import { Module } from '@nestjs/common';
import { BroadcastModule } from '../../gateway/broadcast.module.js';
import { ImageGatewayModule } from '../../gateway/image-gateway.module.js';
import { NetworkInfoModule } from '../network-info/network-info.module.js';
import { WebAssetsModule } from '../web-assets/web-assets.module.js';
import { ControlController } from './control.controller.js';
import { ControlGuardModule } from '../../shared/control-guard/control-guard.module.js';
import { HttpHardening } from './http-hardening.service.js';
import { HttpLimitsModule } from '../../shared/http-limits/http-limits.module.js';
import { ServerLifecycle } from './server-lifecycle.service.js';
import { ViewerGateModule } from '../../shared/viewer-gate/viewer-gate.module.js';
import { ScopeHooksModule } from '../../shared/scope-hooks/scope-hooks.module.js';

/**
 * START / STOP with the disconnect grace, `POST /api/server/{start,stop}`, and the guard of
 * the control routes. ServerLifecycle drives the {@link ViewerGate} the others read.
 */
@Module({
  imports: [ViewerGateModule, ScopeHooksModule, ControlGuardModule, HttpLimitsModule, WebAssetsModule, BroadcastModule, ImageGatewayModule, NetworkInfoModule],
  providers: [ServerLifecycle, HttpHardening],
  controllers: [ControlController],
  exports: [ServerLifecycle],
})
export class LifecycleModule {}
