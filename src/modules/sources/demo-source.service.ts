import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import sharp from 'sharp';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';
import { ImageNotifier } from '../image-notifier/image-notifier.service.js';
import { DemoSky } from './demo-sky.js';

/** The demo as `/status` reports it. */
export interface DemoStatus {
  intervalMs: number;
  /** Frames stacked so far (the STACK_SIZE it reports). */
  frames: number;
  exposurePerFrameSeconds: number;
}

/** Pretend sub-exposure of each demo frame: a typical EAA sub, so EXPO grows believably. */
const DEMO_SUB_EXPOSURE_SECONDS = 30;

/**
 * `demo: true`: a synthetic live stack for a first run without a telescope. Every
 * `demoIntervalMs` one more frame is "stacked" (the noise of a star field and a galaxy
 * falls as 1/√n) and published through {@link ImageNotifier.publish}, like a real image,
 * with STACK_SIZE and EXPO growing. The first frame goes out at once.
 */
@Injectable()
export class DemoSourceService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('DemoSource');
  private sky: DemoSky | undefined;
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private publishing: Promise<void> | undefined;
  private frames = 0;

  constructor(
    @Inject(IMAGE_SERVER_OPTIONS) private readonly options: ImageServerOptions,
    private readonly notifier: ImageNotifier,
  ) {}

  get enabled(): boolean {
    return this.options.demo;
  }

  status(): DemoStatus {
    return { intervalMs: this.options.demoIntervalMs, frames: this.frames, exposurePerFrameSeconds: DEMO_SUB_EXPOSURE_SECONDS };
  }

  onApplicationBootstrap(): void {
    if (this.enabled) {
      this.start();
    }
  }

  /** The first shutdown hook Nest runs: no new image is taken once the app closes. */
  async onModuleDestroy(): Promise<void> {
    await this.stop();
  }

  start(): void {
    if (this.running) {
      return;
    }
    this.running = true;
    this.logger.log(`demo: a synthetic live stack, one more frame every ${this.options.demoIntervalMs} ms`);
    this.schedule(0);
  }

  /** Clears the timer and waits for a frame in progress to be published. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.publishing;
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.publishing = this.publishNextFrame().finally(() => {
        this.publishing = undefined;
        // The next frame is timed from the end of this one, so frames never pile up.
        if (this.running) {
          this.schedule(this.options.demoIntervalMs);
        }
      });
    }, delayMs);
  }

  private async publishNextFrame(): Promise<void> {
    const n = this.frames + 1;
    try {
      this.sky ??= new DemoSky();
      const jpeg = await sharp(this.sky.frame(n), { raw: { width: this.sky.width, height: this.sky.height, channels: 3 } })
        .jpeg({ quality: this.options.jpegQuality })
        .toBuffer();
      await this.notifier.publish(jpeg, { stackSize: n, exposureSeconds: n * DEMO_SUB_EXPOSURE_SECONDS });
      this.frames = n;
    } catch (err) {
      this.logger.warn(`demo frame ${n} not published: ${(err as Error).message}`);
    }
  }
}
