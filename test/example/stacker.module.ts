import { Injectable, Module, type DynamicModule } from '@nestjs/common';
import { ImageNotifier, ImageServerModule, type ImageServerModuleOptions } from '../../src/index.js';

/**
 * An example of another Nest service embedding stackcast: its own provider gets
 * ImageNotifier injected and publishes each stacked frame.
 */
@Injectable()
export class ExampleStacker {
  private frames = 0;

  constructor(private readonly notifier: ImageNotifier) {}

  /** Called by the stacker whenever it has a new stacked image. */
  async onStacked(jpeg: Buffer, subExposureSeconds: number): Promise<void> {
    this.frames++;
    await this.notifier.publish(jpeg, { stackSize: this.frames, exposureSeconds: this.frames * subExposureSeconds });
  }
}

@Module({})
export class ExampleStackerModule {
  static register(options: ImageServerModuleOptions): DynamicModule {
    return {
      module: ExampleStackerModule,
      imports: [ImageServerModule.forRoot(options)],
      providers: [ExampleStacker],
      exports: [ExampleStacker],
    };
  }
}
