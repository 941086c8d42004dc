import { WebSocket, type ClientOptions } from 'ws';

/**
 * A WebSocket client that records every message from the moment it connects, so a
 * message sent before a test starts waiting is never lost (immich e2e
 * `waitForWebsocketEvent`).
 */
export class RecordingClient {
  readonly messages: unknown[] = [];
  readonly rawFrames: { data: Buffer; isBinary: boolean }[] = [];
  private waiters: (() => void)[] = [];
  closeCode: number | undefined;
  private closedResolve!: () => void;
  readonly closed: Promise<void> = new Promise((r) => (this.closedResolve = r));

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      this.rawFrames.push({ data, isBinary });
      try {
        this.messages.push(JSON.parse(data.toString()));
      } catch {
        this.messages.push(data.toString());
      }
      this.wake();
    });
    socket.on('close', (code) => {
      this.closeCode = code;
      this.closedResolve();
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static connect(
    url: string,
    options: { autoCloseOnDisconnect?: boolean; perMessageDeflate?: boolean; headers?: Record<string, string>; ca?: string } = {},
  ): Promise<RecordingClient> {
    return new Promise((resolve, reject) => {
      const clientOptions: ClientOptions = { perMessageDeflate: options.perMessageDeflate ?? false, headers: options.headers, ca: options.ca };
      const socket = new WebSocket(url, clientOptions);
      const client = new RecordingClient(socket);
      if (options.autoCloseOnDisconnect) {
        socket.on('message', (data: Buffer) => {
          if (data.toString().includes('"disconnect"')) {
            socket.close(1000);
          }
        });
      }
      socket.once('open', () => resolve(client));
      socket.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      socket.once('error', reject);
    });
  }

  count(type: string): number {
    return this.ofType(type).length;
  }

  /** The recorded JSON messages whose `type` is `type`, in order. */
  ofType(type: string): Record<string, unknown>[] {
    return this.messages.filter(
      (m): m is Record<string, unknown> => typeof m === 'object' && m !== null && (m as { type?: unknown }).type === type,
    );
  }

  /** Resolves once `predicate` holds over the recorded messages; rejects after `timeoutMs`. */
  async waitFor(predicate: (c: RecordingClient) => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this)) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${JSON.stringify(this.messages)}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.socket.close();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    waiters.forEach((w) => w());
  }
}

/** Resolves when an upgrade to `url` is refused, with the HTTP status; rejects if it opens. */
export function expectUpgradeRefused(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    socket.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      socket.terminate();
    });
    socket.once('open', () => {
      socket.terminate();
      reject(new Error('upgrade was accepted'));
    });
    // Settles in every case: a connection dropped without an HTTP answer is a failure too.
    socket.once('error', (err) => reject(new Error(`upgrade failed without an HTTP answer: ${err.message}`)));
  });
}
