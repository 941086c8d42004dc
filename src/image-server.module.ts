import {
  ConfigurableModuleBuilder,
  Module,
  RequestMethod,
  type MiddlewareConsumer,
  type NestModule,
  type Provider,
} from '@nestjs/common';
import {
  IMAGE_SERVER_OPTIONS,
  resolveImageServerOptions,
  type ImageServerOptions,
} from './config/image-server-options.js';
import { BroadcastService } from './gateway/broadcast.service.js';
import { ImageGateway } from './gateway/image.gateway.js';
import { CLUSTER_PROVIDERS } from './modules/cluster/cluster.module.js';
import { MetricsController, MetricsGuard } from './modules/status/metrics.controller.js';
import { MetricsService } from './modules/status/metrics.service.js';
import { ImageConverter } from './modules/image-notifier/image-converter.service.js';
import { ImageNotifier } from './modules/image-notifier/image-notifier.service.js';
import { ImageUploadController } from './modules/image-notifier/image-upload.controller.js';
import { ControlController } from './modules/lifecycle/control.controller.js';
import { ControlGuard } from './modules/lifecycle/control.guard.js';
import { ServerLifecycle } from './modules/lifecycle/server-lifecycle.service.js';
import { NetworkInfoService } from './modules/network-info/network-info.service.js';
import { networkInterfacesProvider } from './modules/network-info/network-interfaces.provider.js';
import { QrController } from './modules/network-info/qr.controller.js';
import { DemoSourceService } from './modules/sources/demo-source.service.js';
import { FolderWatchService } from './modules/sources/folder-watch.service.js';
import { ImageSources } from './modules/sources/image-sources.service.js';
import { StatusController } from './modules/status/status.controller.js';
import { FileStorage } from './modules/web-assets/file-storage.repository.js';
import { WebAssetsService } from './modules/web-assets/web-assets.service.js';
import { WebFolderMiddleware } from './modules/web-assets/web-folder.middleware.js';

/** What `forRoot` / `forRootAsync` take: any subset of the options; the rest keep their defaults. */
export type ImageServerModuleOptions = Partial<ImageServerOptions>;

const { ConfigurableModuleClass, MODULE_OPTIONS_TOKEN } = new ConfigurableModuleBuilder<ImageServerModuleOptions>({
  moduleName: 'ImageServer',
})
  .setClassMethodName('forRoot')
  // `isGlobal: true` lets every module of the host app inject ImageNotifier.
  .setExtras({ isGlobal: false }, (definition, extras) => ({ ...definition, global: extras.isGlobal }))
  .build();

/** One provider array shared by `forRoot` and `forRootAsync`. */
const providers: Provider[] = [
  {
    provide: IMAGE_SERVER_OPTIONS,
    useFactory: (partial: ImageServerModuleOptions) => resolveImageServerOptions(partial),
    inject: [MODULE_OPTIONS_TOKEN],
  },
  FileStorage,
  networkInterfacesProvider,
  NetworkInfoService,
  WebAssetsService,
  BroadcastService,
  ServerLifecycle,
  ControlGuard,
  ImageConverter,
  ImageNotifier,
  ImageGateway,
  FolderWatchService,
  DemoSourceService,
  ImageSources,
  // Scale-out and operations (issue 11).
  ...CLUSTER_PROVIDERS,
  MetricsService,
  MetricsGuard,
];

/**
 * The whole stackcast service as an embeddable module: viewer files, `/ws`, `/status`,
 * the control routes and {@link ImageNotifier}. The host app needs the ws adapter
 * (`app.useWebSocketAdapter(new WsAdapter(app))`) and calls `app.init()`: the module
 * binds `port` itself at START (set `listen: false` to bind with `app.listen()` instead).
 *
 * ```ts
 * @Module({ imports: [ImageServerModule.forRoot({ port: 8000, workFolder: '/data/stackcast' })] })
 * ```
 */
@Module({
  providers,
  controllers: [StatusController, ControlController, ImageUploadController, QrController, MetricsController],
  exports: [ImageNotifier, ServerLifecycle, IMAGE_SERVER_OPTIONS],
})
export class ImageServerModule extends ConfigurableModuleClass implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(WebFolderMiddleware).forRoutes({ path: '{*path}', method: RequestMethod.ALL });
  }
}
