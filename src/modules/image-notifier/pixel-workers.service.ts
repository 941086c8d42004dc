import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { Worker } from 'node:worker_threads';
import { ImageRejectedError, type ImageRejection } from './image-rejected.error.js';
import type { PixelResults, PixelTask } from './pixel-task.js';

/** What the worker posts back for task `id`. */
export interface PixelReply {
  id: number;
  threadId: number;
  result?: PixelResults[PixelTask['kind']];
  error?: { message: string; reason?: ImageRejection };
}

interface Pending {
  resolve: (reply: PixelReply) => void;
  reject: (err: Error) => void;
}

/**
 * The publish path's pixel loops (FITS decode, statistics, stretch, float scaling) on one
 * long-lived worker thread, so the event loop keeps serving pings and `/status` during a
 * publish. One worker, not a pool: publishes are serialised per image anyway, libvips
 * already uses libuv's threads, and the target machines have 2 to 4 cores.
 * A worker that dies is replaced on the next task; shutdown terminates it.
 */
@Injectable()
export class PixelWorkers implements OnApplicationShutdown {
  private readonly logger = new Logger(PixelWorkers.name);
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  /** Tasks the worker finished (successfully or with an error it reported). */
  completed = 0;
  /** The worker thread that ran the last task. */
  lastThreadId: number | undefined;

  /**
   * Runs `task` on the worker. `transfer`: buffers whose memory moves to the worker (the
   * caller must not use them afterwards). An `ImageRejectedError` thrown there comes back as one.
   */
  async run<T extends PixelTask>(task: T, transfer: ArrayBuffer[] = []): Promise<PixelResults[T['kind']]> {
    if (this.closed) {
      throw new Error('the pixel worker is shut down');
    }
    const worker = this.worker ?? this.start();
    const id = this.nextId++;
    const reply = await new Promise<PixelReply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, task }, transfer);
    });
    this.completed++;
    this.lastThreadId = reply.threadId;
    if (reply.error) {
      throw reply.error.reason ? new ImageRejectedError(reply.error.reason, reply.error.message) : new Error(reply.error.message);
    }
    return reply.result as PixelResults[T['kind']];
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }

  private start(): Worker {
    const { url, workerData } = workerEntry();
    const worker = new Worker(url, { workerData });
    // Never keeps the process alive by itself.
    worker.unref();
    worker.on('message', (reply: PixelReply) => {
      const waiting = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      waiting?.resolve(reply);
    });
    worker.on('error', (err) => this.lost(worker, new Error(`the pixel worker failed (${err.message}); a new one starts with the next image`)));
    worker.on('exit', (code) =>
      this.lost(worker, new Error(`the pixel worker exited with code ${code} before it finished converting the image; a new one starts with the next image`)),
    );
    this.worker = worker;
    return worker;
  }

  /** Fails every task in flight on `worker`; the next task starts a new one. */
  private lost(worker: Worker, err: Error): void {
    if (this.worker === worker) {
      this.worker = undefined;
    }
    if (this.pending.size > 0 && !this.closed) {
      this.logger.warn(`pixel worker lost (${err.message}); ${this.pending.size} task(s) failed, a new worker starts with the next`);
    }
    for (const { reject } of this.pending.values()) {
      reject(err);
    }
    this.pending.clear();
  }
}

/** `dist/`: the compiled worker beside this file. From the sources (vitest): scripts/ts-worker.mjs, which loads TypeScript first. */
function workerEntry(): { url: URL; workerData?: { entry: string } } {
  const self = import.meta.url;
  if (self.endsWith('.ts')) {
    return { url: new URL('../../../scripts/ts-worker.mjs', self), workerData: { entry: new URL('./pixel.worker.ts', self).href } };
  }
  return { url: new URL('./pixel.worker.js', self) };
}
