import { Module, RequestMethod, type MiddlewareConsumer, type NestModule } from '@nestjs/common';
import { ViewerGateModule } from '../lifecycle/viewer-gate.module.js';
import { FileStorage } from './file-storage.repository.js';
import { HotFileResponder } from './hot-files.responder.js';
import { WebAssetsService } from './web-assets.service.js';
import { WebFolderMiddleware } from './web-folder.middleware.js';

/**
 * The web folder: viewer files, the waiting image, web_image.jpg and data.json (atomic
 * writes, one queue), and serving them (503 while the gate is closed).
 */
@Module({
  imports: [ViewerGateModule],
  providers: [FileStorage, WebAssetsService, HotFileResponder],
  exports: [WebAssetsService, HotFileResponder],
})
export class WebAssetsModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(WebFolderMiddleware).forRoutes({ path: '{*path}', method: RequestMethod.ALL });
  }
}
