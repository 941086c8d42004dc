import { ConfigurableModuleBuilder, Module, type DynamicModule } from '@nestjs/common';
import {
  IMAGE_SERVER_OPTIONS,
  resolveImageServerOptions,
  type ImageServerOptions,
} from './config/image-server-options.js';
import { ImageGatewayModule } from './gateway/image-gateway.module.js';
import { ClusterModule } from './modules/cluster/cluster.module.js';
import { HistoryModule } from './modules/history/history.module.js';
import { ImageNotifierModule } from './modules/image-notifier/image-notifier.module.js';
import { LifecycleModule } from './modules/lifecycle/lifecycle.module.js';
import { MetricsModule } from './modules/metrics/metrics.module.js';
import { NetworkInfoModule } from './modules/network-info/network-info.module.js';
import { ObjectsModule } from './modules/objects/objects.module.js';
import { SourcesModule } from './modules/sources/sources.module.js';
import { StatusModule } from './modules/status/status.module.js';
import { SCOPE_APP_FACTORY, type ScopeAppFactory } from './modules/scopes/scope-app-factory.js';
import { ScopesModule } from './modules/scopes/scopes.module.js';
import { WebAssetsModule } from './modules/web-assets/web-assets.module.js';

/** What `forRoot` / `forRootAsync` take: any subset of the options; the rest keep their defaults. */
export type ImageServerModuleOptions = Partial<ImageServerOptions>;

const { ConfigurableModuleClass, MODULE_OPTIONS_TOKEN } =
  new ConfigurableModuleBuilder<ImageServerModuleOptions>({ moduleName: 'ImageServer' })
    .setClassMethodName('forRoot')
    // `isGlobal: true` lets every module of the host app inject ImageNotifier.
    .setExtras({ isGlobal: false }, (definition, extras) => ({ ...definition, global: extras.isGlobal }))
    .build();

/** Holds the resolved options for the feature modules; made global by {@link ImageServerModule}. */
@Module({})
class ImageServerOptionsModule {}

/** The feature modules, lowest first. */
const FEATURES = [
  MetricsModule,
  ObjectsModule,
  WebAssetsModule,
  HistoryModule,
  ImageGatewayModule,
  NetworkInfoModule,
  LifecycleModule,
  ClusterModule,
  ImageNotifierModule,
  SourcesModule,
  StatusModule,
  ScopesModule,
];

/** How a scope's app is built (ScopesService): this module again, with the scope's options. */
const scopeAppFactory: ScopeAppFactory = (options) => ImageServerModule.forRoot(options);

/**
 * The whole stackcast service as an embeddable module: viewer files, `/ws`, `/status`,
 * the control routes, {@link ImageNotifier} and the viewers' sessions (`ViewerSessions`,
 * re-exported with the gateway module). The host app sets the ws adapter
 * (`app.useWebSocketAdapter(new WsAdapter(app))`) and calls `app.listen()` as usual: the
 * module serves on the host's HTTP server. With `listen: true` it binds `port` itself at
 * START instead (then `app.init()` is enough).
 *
 * ```ts
 * @Module({ imports: [ImageServerModule.forRoot({ workFolder: '/data/stackcast' })] })
 * ```
 */
@Module({})
export class ImageServerModule extends ConfigurableModuleClass {
  static override forRoot(options: Parameters<typeof ConfigurableModuleClass.forRoot>[0]): DynamicModule {
    return compose(super.forRoot(options));
  }

  static override forRootAsync(options: Parameters<typeof ConfigurableModuleClass.forRootAsync>[0]): DynamicModule {
    return compose(super.forRootAsync(options));
  }
}

/**
 * The options are given once: the builder's providers (and the async `imports`) move into
 * one options module, global so every feature module injects IMAGE_SERVER_OPTIONS without
 * an import running back up to this module.
 */
function compose(built: DynamicModule): DynamicModule {
  const options: DynamicModule = {
    module: ImageServerOptionsModule,
    global: true,
    imports: built.imports ?? [],
    providers: [
      ...(built.providers ?? []),
      {
        provide: IMAGE_SERVER_OPTIONS,
        useFactory: (partial: ImageServerModuleOptions) => resolveImageServerOptions(partial),
        inject: [MODULE_OPTIONS_TOKEN],
      },
      { provide: SCOPE_APP_FACTORY, useValue: scopeAppFactory },
    ],
    exports: [IMAGE_SERVER_OPTIONS, SCOPE_APP_FACTORY],
  };
  return {
    module: ImageServerModule,
    global: built.global,
    imports: [options, ...FEATURES],
    // The public API, exactly: ImageNotifier, ServerLifecycle and ViewerSessions.
    exports: [ImageNotifierModule, LifecycleModule, ImageGatewayModule],
  };
}
