import { Controller, Get, Req, ServiceUnavailableException } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { performance } from 'node:perf_hooks';
import { BroadcastService } from '../../gateway/broadcast.service.js';
import { ClusterService, type ClusterStatus } from '../cluster/cluster.service.js';
import { ControlGuard } from '../lifecycle/control.guard.js';
import { ServerLifecycle, type LifecycleState } from '../lifecycle/server-lifecycle.service.js';
import type { AdvertisedAddress } from '../network-info/network-info.service.js';
import type { DemoStatus } from '../sources/demo-source.service.js';
import type { WatchStatus } from '../sources/folder-watch.service.js';
import { ImageSources, type ImageSourceKind } from '../sources/image-sources.service.js';
import { formatExposure } from '../web-assets/exposure-format.js';
import { WebAssetsService, type StorageProblem } from '../web-assets/web-assets.service.js';
import { anonymousStatus, type AnonymousStatusBody } from './status-exposure.js';

const STORAGE_WARNINGS: Record<StorageProblem, string> = {
  full: 'the disk of the web folder is full: publishes fail until space is freed; the previous image is still served',
  'read-only': 'the web folder cannot be written: publishes fail; the previous image is still served',
  missing: 'the web folder or its viewer files are gone: the next publish creates them again',
  failed: 'the last write to the web folder failed: see the log',
};

/** The body of `GET /status`. */
export interface StatusBody {
  status: LifecycleState;
  port: number;
  url: string;
  displayedAddress: string;
  limitedAccess: boolean;
  addresses: AdvertisedAddress[];
  warnings: string[];
  /** `ok`, or why the web folder cannot be written (see the warnings). */
  storage: 'ok' | StorageProblem;
  clients: number;
  stackSize: number;
  exposure: string;
  exposureSeconds: number;
  imagesPublished: number;
  lastImageAt: string | null;
  /** Version of the image on disk (`/v/<version>/`); null while the waiting image is shown. */
  version: number | null;
  /** The object the image shown names (data.json `OBJECT`); null when none is known. */
  object: string | null;
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
  // Monotonic: a clock stepped back must not make the uptime negative.
  private readonly startedAt = performance.now();

  constructor(
    private readonly lifecycle: ServerLifecycle,
    private readonly broadcast: BroadcastService,
    private readonly assets: WebAssetsService,
    private readonly sources: ImageSources,
    private readonly cluster: ClusterService,
    private readonly control: ControlGuard,
  ) {}

  /**
   * 200 while running; 503 with the same body while starting, stopping or stopped.
   * Callers without control access get {@link anonymousStatus}: no paths, interfaces or warnings.
   */
  @Get('status')
  @ApiOperation({ summary: 'State, advertised address, viewers and session metrics (paths, interfaces and warnings for control callers only)' })
  @ApiResponse({ status: 200, description: 'Running' })
  @ApiResponse({ status: 503, description: 'Starting, stopping or stopped (same body)' })
  async status(@Req() req: Request): Promise<StatusBody | AnonymousStatusBody> {
    const ad = this.lifecycle.advertised;
    const session = this.assets.session;
    const storage = (await this.assets.storageProblem()) ?? 'ok';
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
