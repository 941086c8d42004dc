import { Controller, Get, Header, Inject, Res, type CanActivate, type ExecutionContext, Injectable, UseGuards } from '@nestjs/common';
import { ApiOperation, ApiProduces, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';
import { ControlGuard } from '../../shared/control-guard/control.guard.js';
import { MetricsService } from '../metrics/metrics.service.js';

/** The control auth, unless `metricsPublic` (METRICS_PUBLIC=true). */
@Injectable()
export class MetricsGuard implements CanActivate {
  constructor(
    @Inject(IMAGE_SERVER_OPTIONS) private readonly options: ImageServerOptions,
    private readonly control: ControlGuard,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    return this.options.metricsPublic || this.control.canActivate(context);
  }
}

@ApiTags('status')
@Controller()
export class MetricsController {
  constructor(private readonly metrics: MetricsService) {}

  /** Prometheus text format. */
  @Get('metrics')
  @ApiOperation({ summary: 'Prometheus metrics of this process (control auth unless METRICS_PUBLIC=true)' })
  @ApiProduces('text/plain')
  @ApiResponse({ status: 200, description: 'Prometheus text exposition format' })
  @ApiResponse({ status: 401, description: 'No or wrong bearer token (a token is configured)' })
  @ApiResponse({ status: 403, description: 'Not from loopback (no token configured)' })
  @UseGuards(MetricsGuard)
  @Header('Cache-Control', 'no-store')
  async scrape(@Res({ passthrough: true }) res: Response): Promise<string> {
    res.type(this.metrics.contentType);
    return this.metrics.render();
  }
}
