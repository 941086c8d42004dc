import { Module } from '@nestjs/common';
import { ImageGatewayModule } from '../../gateway/image-gateway.module.js';
import { LifecycleModule } from '../lifecycle/lifecycle.module.js';
import { SourcesModule } from '../sources/sources.module.js';
import { WebAssetsModule } from '../web-assets/web-assets.module.js';
import { StatusController } from './status.controller.js';

/** `GET /status`: the state, the advertised address, viewers, metrics and the image source. */
@Module({
  imports: [LifecycleModule, ImageGatewayModule, WebAssetsModule, SourcesModule],
  controllers: [StatusController],
})
export class StatusModule {}
