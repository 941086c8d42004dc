import { Injectable, Module, type DynamicModule, type OnModuleDestroy } from '@nestjs/common';
import type { Subscription } from 'rxjs';
import { ImageNotifier, ImageServerModule, ViewerSessions, type ImageServerModuleOptions, type ViewerEvent } from '../../src/index.js';

/**
 * An example of another Nest service embedding stackcast: its own provider gets
 * ImageNotifier injected and publishes each stacked frame.
 */
@Injectable()
export class ExampleStacker {
  private frames = 0;

  constructor(private readonly notifier: ImageNotifier) {}

  get stacked(): number {
    return this.frames;
  }

  /** Called by the stacker whenever it has a new stacked image. */
  async onStacked(jpeg: Buffer, subExposureSeconds: number): Promise<void> {
    this.frames++;
    await this.notifier.publish(jpeg, { stackSize: this.frames, exposureSeconds: this.frames * subExposureSeconds });
  }
}

/**
 * The same service listening to its audience through ViewerSessions: it keeps every
 * session event, and answers a viewer's `{"type":"how_many_frames"}` with a notice to that
 * viewer only.
 */
@Injectable()
export class ExampleAudience implements OnModuleDestroy {
  readonly seen: ViewerEvent[] = [];
  private readonly subscription: Subscription;

  constructor(
    private readonly sessions: ViewerSessions,
    private readonly stacker: ExampleStacker,
  ) {
    this.subscription = sessions.events.subscribe((event) => this.on(event));
  }

  onModuleDestroy(): void {
    this.subscription.unsubscribe();
  }

  private on(event: ViewerEvent): void {
    this.seen.push(event);
    if (event.type === 'viewer.message' && event.message.type === 'how_many_frames') {
      this.sessions.send(event.viewer.id, { type: 'notice', text: `${this.stacker.stacked} frames stacked so far` });
    }
  }
}

@Module({})
export class ExampleStackerModule {
  static register(options: ImageServerModuleOptions): DynamicModule {
    return {
      module: ExampleStackerModule,
      imports: [ImageServerModule.forRoot(options)],
      providers: [ExampleStacker, ExampleAudience],
      exports: [ExampleStacker, ExampleAudience],
    };
  }
}
