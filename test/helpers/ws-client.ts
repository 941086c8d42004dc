import { connect, type Socket } from 'node:net';
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

/**
 * Completes the `/ws` handshake by hand on a plain TCP socket and resolves it paused after
 * the 101: from then on nothing is read, so the kernel buffers fill up (a stalled client).
 */
export function rawWebSocket(port: number, { localAddress }: { localAddress?: string } = {}): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress }, () => {
      socket.write(
        'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      );
    });
    socket.once('data', (chunk) => {
      if (!chunk.toString().startsWith('HTTP/1.1 101')) {
        reject(new Error(`handshake refused: ${chunk.toString().split('\r\n')[0]}`));
        return;
      }
      socket.pause();
      resolve(socket);
    });
    socket.once('error', reject);
  });
}
