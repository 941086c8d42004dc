import { Module, RequestMethod, type MiddlewareConsumer, type NestModule, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { ViewerGate } from '../../shared/viewer-gate/viewer-gate.js';
import { ViewerGateModule } from '../../shared/viewer-gate/viewer-gate.module.js';
import { DeepLevels } from './deep-levels.service.js';
import { CURRENT_VERSION, type CurrentVersion } from './current-version.js';
import { FileStorage } from './file-storage.repository.js';
import { HotFileResponder } from './hot-files.responder.js';
import { CompressedFiles } from './precompressed.js';
import { PyramidBuilder } from './pyramid.js';
import { VersionFiles } from './version-files.js';
import { VersionStore } from './version-store.js';
import { ViewerFilesService } from './viewer-files.service.js';
import { WebAssetsService } from './web-assets.service.js';
import { WebFolderFiles } from './web-folder-files.js';
import { webFolderFallback, WebFolderMiddleware } from './web-folder.middleware.js';

/**
 * The web folder: viewer files (a user's own page kept), the waiting image, web_image.jpg
 * and data.json (atomic writes, one queue), the versions (their numbering, pyramids under `v/`) and serving all
 * of it as it is on disk now (503 while the gate is closed).
 */
@Module({
  imports: [ViewerGateModule],
  providers: [
    FileStorage,
    WebAssetsService,
    ViewerFilesService,
    CompressedFiles,
    WebFolderFiles,
    HotFileResponder,
    VersionStore,
    PyramidBuilder,
    DeepLevels,
    VersionFiles,
    {
      provide: CURRENT_VERSION,
      useFactory: (assets: WebAssetsService): CurrentVersion => () => assets.session.version ?? undefined,
      inject: [WebAssetsService],
    },
  ],
  exports: [WebAssetsService, HotFileResponder, VersionStore, PyramidBuilder, DeepLevels, CURRENT_VERSION],
})
export class WebAssetsModule implements NestModule, OnModuleInit {
  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly folder: WebFolderFiles,
    private readonly gate: ViewerGate,
  ) {}

  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(WebFolderMiddleware).forRoutes({ path: '{*path}', method: RequestMethod.ALL });
  }

  /** Nest calls this after registering the routes and before its 404 handler: the fallback goes between. */
  onModuleInit(): void {
    if (this.folder.dedicated) {
      this.adapterHost.httpAdapter?.use(webFolderFallback(this.folder, this.gate));
    }
  }
}
