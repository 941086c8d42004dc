import { Controller, Get, Inject, Req, ServiceUnavailableException } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { performance } from 'node:perf_hooks';
import { BroadcastService } from '../../gateway/broadcast.service.js';
import { ClusterService } from '../cluster/cluster.service.js';
import { ControlGuard } from '../../shared/control-guard/control.guard.js';
import { RelayService } from '../relay/relay.service.js';
import { ScopeHooks } from '../../shared/scope-hooks/scope-hooks.js';
import { ServerLifecycle } from '../lifecycle/server-lifecycle.service.js';
import { ImageSources } from '../sources/image-sources.service.js';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';
import { formatExposure } from '../web-assets/exposure-format.js';
import { WebAssetsService, type StorageProblem } from '../web-assets/web-assets.service.js';
import type { StatusBody } from './status-body.js';
import { anonymousStatus, type AnonymousStatusBody } from './status-exposure.js';

export type { StatusBody } from './status-body.js';

const STORAGE_WARNINGS: Record<StorageProblem, string> = {
  full: 'the disk of the web folder is full: publishes fail until space is freed; the previous image is still served',
  'read-only': 'the web folder cannot be written: publishes fail; the previous image is still served',
  missing: 'the web folder or its viewer files are gone: the next publish creates them again',
  failed: 'the last write to the web folder failed: see the log',
};

@ApiTags('status')
@Controller()
export class StatusController {
  // Monotonic: a clock stepped back must not make the uptime negative.
  private readonly startedAt = performance.now();

  constructor(
    private readonly lifecycle: ServerLifecycle,
    private readonly broadcast: BroadcastService,
    private readonly assets: WebAssetsService,
    private readonly sources: ImageSources,
    private readonly cluster: ClusterService,
    private readonly control: ControlGuard,
    private readonly relay: RelayService,
    private readonly scopes: ScopeHooks,
    @Inject(IMAGE_SERVER_OPTIONS) private readonly options: ImageServerOptions,
  ) {}

  /**
   * 200 while running; 503 with the same body while starting, stopping or stopped.
   * Callers without control access get {@link anonymousStatus}: no paths, interfaces or warnings.
   */
  @Get('status')
  @ApiOperation({ summary: 'State, advertised address, viewers and session metrics (paths, interfaces and warnings for control callers only)' })
  @ApiResponse({ status: 200, description: 'Running' })
  @ApiResponse({ status: 503, description: 'Starting, stopping or stopped (same body)' })
  status(@Req() req: Request): StatusBody | AnonymousStatusBody {
    const ad = this.lifecycle.advertised;
    const session = this.assets.session;
    const storage = this.assets.storageProblem() ?? 'ok';
    const body: StatusBody = {
      status: this.lifecycle.state,
      port: this.lifecycle.port,
      url: ad.url,
      displayedAddress: ad.displayedAddress,
      limitedAccess: ad.limitedAccess,
      addresses: ad.addresses,
      warnings: storage === 'ok' ? ad.warnings : [...ad.warnings, STORAGE_WARNINGS[storage]],
      storage,
      clients: this.broadcast.count,
      stackSize: session.stackSize,
      exposure: formatExposure(session.exposureSeconds),
      exposureSeconds: session.exposureSeconds,
      imagesPublished: session.imagesPublished,
      lastImageAt: session.lastImageAt?.toISOString() ?? null,
      version: session.version,
      object: session.object,
      uptimeSeconds: Math.round((performance.now() - this.startedAt) / 1000),
      ...this.sources.report(),
      cluster: this.cluster.status(),
      wifi: this.options.wifiSsid === undefined ? null : { ssid: this.options.wifiSsid },
      viewerLanguage: this.options.viewerLanguage,
      upstream: this.relay.status(),
      scopes: this.scopes.list?.(),
    };
    const answer = this.control.isAuthorized(req) ? body : anonymousStatus(body);
    switch (body.status) {
      case 'running':
        return answer;
      case 'starting':
      case 'stopping':
      case 'stopped':
        throw new ServiceUnavailableException(answer);
      default: {
        const unreachable: never = body.status;
        throw new Error(`unknown state ${String(unreachable)}`);
      }
    }
  }
}
