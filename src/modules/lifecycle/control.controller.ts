import { Controller, HttpCode, Post, UseGuards } from '@nestjs/common';
import { ControlGuard } from './control.guard.js';
import { ServerLifecycle, type StopReport } from './server-lifecycle.service.js';

/** The START and STOP commands over HTTP (the process stays up while stopped). */
@Controller('api/server')
@UseGuards(ControlGuard)
export class ControlController {
  constructor(private readonly lifecycle: ServerLifecycle) {}

  @Post('stop')
  @HttpCode(200)
  async stop(): Promise<{ status: string } & StopReport> {
    const report = await this.lifecycle.stop();
    return { status: this.lifecycle.state, ...report };
  }

  @Post('start')
  @HttpCode(200)
  async start(): Promise<{ status: string; url: string }> {
    await this.lifecycle.start();
    return { status: this.lifecycle.state, url: this.lifecycle.advertised.url };
  }
}
