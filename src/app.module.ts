import { Module, type DynamicModule } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { ENVIRONMENT_VARIABLE_NAMES, validateEnv, type EnvironmentVariables } from './config/env.validation.js';
import { optionsFromEnvironment } from './config/environment-options.js';
import { ImageServerModule } from './image-server.module.js';

/**
 * The standalone app: the environment (and `.env`) validated by @nestjs/config, then
 * handed to the embeddable module. `register()` awaits the validation, so a bad setting
 * throws `ConfigValidationError` before Nest creates anything.
 */
@Module({})
export class AppModule {
  static async register(): Promise<DynamicModule> {
    const config = await ConfigModule.forRoot({ isGlobal: true, validate: validateEnv, cache: true });
    return {
      module: AppModule,
      imports: [
        config,
        ImageServerModule.forRootAsync({
          inject: [ConfigService],
          useFactory: (env: ConfigService<EnvironmentVariables, true>) =>
            optionsFromEnvironment(validatedEnvironment(env)),
        }),
      ],
    };
  }
}

function validatedEnvironment(env: ConfigService<EnvironmentVariables, true>): EnvironmentVariables {
  return Object.fromEntries(ENVIRONMENT_VARIABLE_NAMES.map((k) => [k, env.get(k, { infer: true })]));
}
