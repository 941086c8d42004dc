import { Inject, Injectable, Logger, Optional, type OnApplicationShutdown } from '@nestjs/common';
import { Agent, fetch } from 'undici';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';

/** A version as published here, to be sent to the hub. */
export interface RelayedImage {
  /** This service's version of the image; the hub gives it its own. */
  version: number;
  /** The JPEG as published here (the converted one for FITS, PNG and TIFF). */
  jpeg: Buffer;
  stackSize: number;
  exposureSeconds: number;
  object: string | null;
}

/** `/status` `upstream`: `off` without UPSTREAM_URL; `lastError` is the last failure's cause, kept after recovery. */
export interface UpstreamStatus {
  state: 'ok' | 'failing' | 'off';
  lastError: string | null;
  lastSentVersion: number | null;
}

/** How the relay waits; the defaults suit a field, tests shorten them. */
export interface RelayTiming {
  /** First retry after a failure; doubled each time up to {@link maxRetryMs}, with jitter. */
  firstRetryMs: number;
  maxRetryMs: number;
  /** After an answer retrying cannot fix (401, 403, 404, 409, 413, 422...): the next publish, or this. */
  refusedRetryMs: number;
  connectTimeoutMs: number;
  /** The whole upload, from connecting to the hub's answer. */
  uploadTimeoutMs: number;
}

/** Injection token of a partial {@link RelayTiming} (optional). */
export const RELAY_TIMING = 'STACKCAST_RELAY_TIMING';

export const DEFAULT_RELAY_TIMING: RelayTiming = {
  firstRetryMs: 1000,
  maxRetryMs: 60_000,
  refusedRetryMs: 300_000,
  connectTimeoutMs: 5000,
  uploadTimeoutMs: 120_000,
};

/** The hub's message (Nest's `{"message": ...}` or the text), one line, at most 300 characters. */
function hubMessage(text: string): string {
  let message = text;
  try {
    const body = JSON.parse(text) as { message?: unknown };
    const said = typeof body === 'object' && body !== null ? body.message : undefined;
    message = typeof said === 'string' || Array.isArray(said) ? ([] as unknown[]).concat(said).join('; ') : '';
  } catch {
    // Not JSON: the text as it came.
  }
  const line = message.replace(/\s+/g, ' ').trim();
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

/** Seconds as the hub's query accepts them: plain digits, never an exponent. */
function seconds(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(6).replace(/\.?0+$/, '');
}

/** The cause of a failed fetch, in words (undici wraps it: `fetch failed` + cause). */
function networkMessage(err: unknown): string {
  const e = err as Error & { cause?: Error & { code?: string } };
  if (e.name === 'TimeoutError') {
    return e.message;
  }
  const cause = e.cause;
  return cause ? `${cause.code ?? cause.name}: ${cause.message}` : e.message;
}

type Outcome = { kind: 'sent' } | { kind: 'retry'; error: string } | { kind: 'refused'; error: string };

/**
 * With `upstreamUrl`, sends every published version to the hub's scope in the background:
 * one upload at a time, and only the newest version waits for its turn (a newer one
 * replaces it, so a stale one is never sent after a newer one). Failures are retried with
 * exponential backoff; an answer retrying cannot fix waits for the next publish.
 */
@Injectable()
export class RelayService implements OnApplicationShutdown {
  private readonly logger = new Logger(RelayService.name);
  private readonly timing: RelayTiming;
  private readonly target: URL | undefined;
  private readonly token: string | undefined;
  private readonly agent: Agent | undefined;
  private readonly stopping = new AbortController();
  private pending: RelayedImage | undefined;
  /** The newest version offered: an older one offered later (a replica's replay) is dropped. */
  private newest = -Infinity;
  private sending = false;
  private timer: NodeJS.Timeout | undefined;
  /** Waiting after a refusal: the next offer sends at once. */
  private refused = false;
  private failures = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly state: UpstreamStatus;

  constructor(
    @Inject(IMAGE_SERVER_OPTIONS) options: ImageServerOptions,
    @Optional() @Inject(RELAY_TIMING) timing?: Partial<RelayTiming>,
  ) {
    this.timing = { ...DEFAULT_RELAY_TIMING, ...timing };
    this.token = options.upstreamToken;
    // Only `main` relays: a scope's own app (scopeId) copies the options but is not this telescope's image.
    if (options.upstreamUrl !== undefined && options.scopeId === undefined) {
      this.target = new URL('api/image', options.upstreamUrl);
      this.agent = new Agent({
        connect: { timeout: this.timing.connectTimeoutMs },
        // The upload's limit kept by the connection too: a signal fetch follows can be lost to
        // garbage collection in Node 20's undici (nodejs/node#55428), and a held upload with it.
        headersTimeout: this.timing.uploadTimeoutMs,
        bodyTimeout: this.timing.uploadTimeoutMs,
      });
    }
    this.state = { state: this.target ? 'ok' : 'off', lastError: null, lastSentVersion: null };
  }

  /** True with `upstreamUrl`. */
  get enabled(): boolean {
    return this.target !== undefined;
  }

  /** A copy of the upstream state for `/status`. */
  status(): UpstreamStatus {
    return { ...this.state };
  }

  /** Queues `image` to be sent (replacing one still waiting) and returns at once; a no-op without `upstreamUrl`. */
  offer(image: RelayedImage): void {
    if (!this.target || this.stopping.signal.aborted || image.version <= this.newest) {
      return;
    }
    this.newest = image.version;
    this.pending = image;
    if (this.refused) {
      this.refused = false;
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.pump();
  }

  /** Resolves once nothing is being sent and nothing waits to be sent (tests, benchmarks). */
  idle(): Promise<void> {
    if (!this.sending && this.pending === undefined) {
      return Promise.resolve();
    }
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping.abort();
    clearTimeout(this.timer);
    this.pending = undefined;
    await this.agent?.destroy().catch(() => undefined);
  }

  private pump(): void {
    if (this.sending || this.timer !== undefined || this.stopping.signal.aborted) {
      return;
    }
    const image = this.pending;
    if (image === undefined) {
      this.idleWaiters.splice(0).forEach((resolve) => resolve());
      return;
    }
    this.pending = undefined;
    this.sending = true;
    void this.send(image).then((outcome) => {
      this.sending = false;
      this.settle(image, outcome);
      this.pump();
    });
  }

  private settle(image: RelayedImage, outcome: Outcome): void {
    if (this.stopping.signal.aborted) {
      return;
    }
    if (outcome.kind === 'sent') {
      this.failures = 0;
      this.state.lastSentVersion = image.version;
      this.setState('ok');
      return;
    }
    // Sent again unless a newer one came meanwhile.
    this.pending ??= image;
    this.state.lastError = outcome.error;
    this.setState('failing');
    let delay: number;
    if (outcome.kind === 'refused') {
      this.refused = true;
      delay = this.timing.refusedRetryMs;
    } else {
      this.failures++;
      const backoff = Math.min(this.timing.maxRetryMs, this.timing.firstRetryMs * 2 ** Math.min(this.failures - 1, 30));
      // Full range jitter in [backoff/2, backoff]: laptops that lost the same hub do not come back in step.
      delay = backoff / 2 + Math.random() * (backoff / 2);
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.refused = false;
      this.pump();
    }, delay);
    this.timer.unref();
  }

  private setState(state: 'ok' | 'failing'): void {
    if (this.state.state === state) {
      return;
    }
    this.state.state = state;
    if (state === 'failing') {
      this.logger.warn(`the hub ${this.target!.origin}${this.target!.pathname} is not taking images: ${this.state.lastError}; retrying in the background, local viewers are not affected`);
    } else {
      this.logger.log(`the hub ${this.target!.origin}${this.target!.pathname} takes images again (version ${this.state.lastSentVersion} sent)`);
    }
  }

  private async send(image: RelayedImage): Promise<Outcome> {
    const url = new URL(this.target!);
    url.searchParams.set('stackSize', String(image.stackSize));
    url.searchParams.set('exposure', seconds(image.exposureSeconds));
    if (image.object !== null) {
      url.searchParams.set('object', image.object);
    }
    const headers: Record<string, string> = { 'content-type': 'image/jpeg' };
    if (this.token !== undefined) {
      headers.authorization = `Bearer ${this.token}`;
    }
    // Held here until the answer (AbortSignal.timeout's timer holds its signal only weakly).
    const upload = new AbortController();
    const timer = setTimeout(() => upload.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')), this.timing.uploadTimeoutMs);
    const stop = (): void => upload.abort(this.stopping.signal.reason);
    this.stopping.signal.addEventListener('abort', stop, { once: true });
    try {
      const res = await fetch(url, { method: 'PUT', headers, body: image.jpeg, dispatcher: this.agent, signal: upload.signal });
      const text = await res.text();
      if (res.ok) {
        return { kind: 'sent' };
      }
      const error = this.redacted(`the hub answered ${res.status}: ${hubMessage(text) || res.statusText}`);
      const retryable = res.status >= 500 || res.status === 408 || res.status === 429;
      return retryable ? { kind: 'retry', error } : { kind: 'refused', error };
    } catch (err) {
      return { kind: 'retry', error: this.redacted(`could not reach the hub: ${networkMessage(err)}`) };
    } finally {
      clearTimeout(timer);
      this.stopping.signal.removeEventListener('abort', stop);
    }
  }

  /** The token never leaves in a message, whatever the hub echoes. */
  private redacted(message: string): string {
    return this.token === undefined ? message : message.split(this.token).join('***');
  }
}
