import { Controller, Get, ServiceUnavailableException } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { BroadcastService } from '../../gateway/broadcast.service.js';
import { ClusterService, type ClusterStatus } from '../cluster/cluster.service.js';
import { ServerLifecycle, type LifecycleState } from '../lifecycle/server-lifecycle.service.js';
import type { AdvertisedAddress } from '../network-info/network-info.service.js';
import type { DemoStatus } from '../sources/demo-source.service.js';
import type { WatchStatus } from '../sources/folder-watch.service.js';
import { ImageSources, type ImageSourceKind } from '../sources/image-sources.service.js';
import { formatExposure } from '../web-assets/exposure-format.js';
import { WebAssetsService } from '../web-assets/web-assets.service.js';

/** The body of `GET /status`. */
export interface StatusBody {
  status: LifecycleState;
  port: number;
  url: string;
  displayedAddress: string;
  limitedAccess: boolean;
  addresses: AdvertisedAddress[];
  warnings: string[];
  clients: number;
  stackSize: number;
  exposure: string;
  exposureSeconds: number;
  imagesPublished: number;
  lastImageAt: string | null;
  uptimeSeconds: number;
  /** Where images come from: `push` (ImageNotifier / PUT /api/image only), `watch` or `demo`. */
  source: ImageSourceKind;
  /** With `source: "watch"`: the watched path and what the watch did. */
  watch?: WatchStatus;
  /** With `source: "demo"`: the interval and the frames so far. */
  demo?: DemoStatus;
  /** With REDIS_URL: whether this replica reaches Redis, and its id. */
  cluster?: ClusterStatus;
}

@ApiTags('status')
@Controller()
export class StatusController {
  private readonly startedAt = Date.now();

  constructor(
    private readonly lifecycle: ServerLifecycle,
    private readonly broadcast: BroadcastService,
    private readonly assets: WebAssetsService,
    private readonly sources: ImageSources,
    private readonly cluster: ClusterService,
  ) {}

  /** 200 while running; 503 with the same body while starting, stopping or stopped. */
  @Get('status')
  @ApiOperation({ summary: 'State, advertised address, viewers and session metrics' })
  @ApiResponse({ status: 200, description: 'Running' })
  @ApiResponse({ status: 503, description: 'Starting, stopping or stopped (same body)' })
  status(): StatusBody {
    const ad = this.lifecycle.advertised;
    const session = this.assets.session;
    const body: StatusBody = {
      status: this.lifecycle.state,
      port: this.lifecycle.port,
      url: ad.url,
      displayedAddress: ad.displayedAddress,
      limitedAccess: ad.limitedAccess,
      addresses: ad.addresses,
      warnings: ad.warnings,
      clients: this.broadcast.count,
      stackSize: session.stackSize,
      exposure: formatExposure(session.exposureSeconds),
      exposureSeconds: session.exposureSeconds,
      imagesPublished: session.imagesPublished,
      lastImageAt: session.lastImageAt?.toISOString() ?? null,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      ...this.sources.report(),
      cluster: this.cluster.status(),
    };
    switch (body.status) {
      case 'running':
        return body;
      case 'starting':
      case 'stopping':
      case 'stopped':
        throw new ServiceUnavailableException(body);
      default: {
        const unreachable: never = body.status;
        throw new Error(`unknown state ${String(unreachable)}`);
      }
    }
  }
}
