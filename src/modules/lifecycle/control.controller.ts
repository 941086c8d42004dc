import { Controller, HttpCode, Post, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { ControlGuard } from '../../shared/control-guard/control.guard.js';
import { ServerLifecycle, type StopReport } from './server-lifecycle.service.js';

/** The START and STOP commands over HTTP (the process stays up while stopped). */
@ApiTags('control')
@ApiBearerAuth()
@ApiResponse({ status: 401, description: 'No or wrong bearer token (a token is configured)' })
@ApiResponse({ status: 403, description: 'Not from loopback (no token configured)' })
@Controller('api/server')
@UseGuards(ControlGuard)
export class ControlController {
  constructor(private readonly lifecycle: ServerLifecycle) {}

  @Post('stop')
  @ApiOperation({ summary: 'STOP', description: 'Every viewer gets `disconnect`; waits for them (at most the grace), then closes the rest. The process stays up.' })
  @ApiResponse({ status: 200, description: '`{status, clients, terminated, durationMs}`' })
  @HttpCode(200)
  async stop(): Promise<{ status: string } & StopReport> {
    const report = await this.lifecycle.stop();
    return { status: this.lifecycle.state, ...report };
  }

  @Post('start')
  @ApiOperation({ summary: 'START', description: 'Publishes the viewer files again and accepts viewers.' })
  @ApiResponse({ status: 200, description: '`{status, url}`' })
  @HttpCode(200)
  async start(): Promise<{ status: string; url: string }> {
    await this.lifecycle.start();
    return { status: this.lifecycle.state, url: this.lifecycle.advertised.url };
  }
}
