import type { DynamicModule } from '@nestjs/common';
import type { ImageServerOptions } from '../../config/image-server-options.js';

/**
 * Injection token of the {@link ScopeAppFactory}: provided by ImageServerModule, so the
 * scopes module builds a scope's app without importing the module that imports it.
 */
export const SCOPE_APP_FACTORY = 'STACKCAST_SCOPE_APP_FACTORY';

/** The root module of one scope's app: `ImageServerModule.forRoot(options)`. */
export type ScopeAppFactory = (options: Partial<ImageServerOptions>) => DynamicModule;
