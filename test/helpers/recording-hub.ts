import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the hub received. */
export interface Received {
  url: URL;
  authorization: string | undefined;
  contentType: string | undefined;
  body: Buffer;
}

/** What the hub answers to the request number `n` (0-based): a status and a body, or hold it unanswered. */
export type Answer = (n: number, req: Received) => { status: number; body?: string; delayMs?: number } | 'hold';

/** A real HTTP server on port 0 that records every request and answers as `answer` says. */
export class RecordingHub {
  readonly received: Received[] = [];
  private readonly server: Server;
  private readonly held: ServerResponse[] = [];
  private waiters: { count: number; resolve: () => void }[] = [];
  answer: Answer = () => ({ status: 200, body: '{"published":true}' });

  constructor() {
    this.server = createServer((req, res) => void this.handle(req, res));
  }

  /** Listens on a port 0 of loopback; resolves with the scope URL `http://127.0.0.1:<port>/s/<scope>/`. */
  async start(scope = 'club-a'): Promise<string> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/s/${scope}/`;
  }

  /** Resolves once `count` requests have been received. */
  requests(count: number): Promise<void> {
    if (this.received.length >= count) {
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }

  async stop(): Promise<void> {
    this.held.forEach((res) => res.destroy());
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, 'close');
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) {
      chunks.push(chunk as Buffer);
    }
    const received: Received = {
      url: new URL(req.url ?? '/', 'http://hub'),
      authorization: req.headers.authorization,
      contentType: req.headers['content-type'],
      body: Buffer.concat(chunks),
    };
    const n = this.received.push(received) - 1;
    this.waiters = this.waiters.filter((w) => (this.received.length >= w.count ? (w.resolve(), false) : true));
    const answer = this.answer(n, received);
    if (answer === 'hold') {
      this.held.push(res);
      return;
    }
    // The hub's own slowness (what a busy hub does), not a wait in the test.
    setTimeout(() => res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body ?? '{}'), answer.delayMs ?? 0);
  }
}
