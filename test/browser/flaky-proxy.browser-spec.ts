import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { hook, launchBrowser, openViewer, waitForImageShown } from './browser.js';

/** What the proxy does with one WebSocket: close it at once, or keep it open that long, then close it. */
type Action = { drop: true } | { holdMs: number };

interface ProxiedSocket {
  /** When the upgrade reached the proxy (the page's connect). */
  openedAt: number;
  /** When the proxy closed it. */
  closedAt?: number;
}

interface StalledResponse {
  /** When the proxy sent the last byte it will send (half of the body). */
  stalledAt: number;
  /** When the browser gave up on it (closed the connection). */
  abortedAt?: number;
}

interface FlakyProxy {
  baseUrl: string;
  sockets: ProxiedSocket[];
  /** Paths of the HTTP requests that came through, in order. */
  requests: string[];
  stalled?: StalledResponse;
  close(): Promise<void>;
}

/**
 * A reverse proxy in front of the real service, as a misconfigured proxy or an overloaded
 * server would behave: every HTTP request goes through to the service, but the WebSocket
 * upgrades on /ws are answered by the proxy itself, which accepts each one (the page sees
 * it open) and closes it as `script` says (one action per connection, the last one repeated).
 * With `stallFirstImage`, the first web_image.jpg answer stops after half its body and the
 * connection stays open without another byte: Wi-Fi lost in the middle of a download.
 */
async function startFlakyProxy(upstreamPort: number, script: Action[], { stallFirstImage = false } = {}): Promise<FlakyProxy> {
  const sockets: ProxiedSocket[] = [];
  const requests: string[] = [];
  const open = new Set<WebSocket>();
  const timers = new Set<NodeJS.Timeout>();
  const wss = new WebSocketServer({ noServer: true });
  const proxy: FlakyProxy = { baseUrl: '', sockets, requests, close: () => Promise.resolve() };
  const http: Server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const stall = stallFirstImage && !proxy.stalled && (req.url ?? '').startsWith('/web_image.jpg');
    const upstream = request({ host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      if (!stall || answer.statusCode !== 200) {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        return;
      }
      const chunks: Buffer[] = [];
      answer.on('data', (chunk: Buffer) => chunks.push(chunk));
      answer.on('end', () => {
        const body = Buffer.concat(chunks);
        res.writeHead(200, answer.headers);
        res.write(body.subarray(0, Math.floor(body.length / 2)), () => {
          const stalled: StalledResponse = { stalledAt: Date.now() };
          proxy.stalled = stalled;
          res.on('close', () => (stalled.abortedAt = Date.now()));
        });
      });
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  http.on('upgrade', (req, socket, head) => {
    if (!req.url?.startsWith('/ws')) {
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const record: ProxiedSocket = { openedAt: Date.now() };
      const action = script[Math.min(sockets.length, script.length - 1)];
      sockets.push(record);
      open.add(ws);
      ws.on('close', () => open.delete(ws));
      const drop = () => {
        record.closedAt = Date.now();
        ws.close(1011, 'dropped by the test proxy');
      };
      if ('drop' in action) {
        drop();
      } else {
        const timer = setTimeout(() => {
          timers.delete(timer);
          drop();
        }, action.holdMs);
        timers.add(timer);
      }
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  proxy.baseUrl = `http://127.0.0.1:${port}`;
  proxy.close = async () => {
    timers.forEach(clearTimeout);
    open.forEach((ws) => ws.terminate());
    wss.close();
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  };
  return proxy;
}

describe('the viewer behind a proxy that misbehaves', () => {
  let server: TestServer;
  let browser: Browser;
  let proxy: FlakyProxy | undefined;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    [server, browser] = await Promise.all([startTestServer(), launchBrowser()]);
  });

  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((c) => c.close()));
    await proxy?.close();
    proxy = undefined;
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('backs off (1, 2, 4, 8 s) while connections only open and drop, and starts again at 1 s only after one stayed open 10 s', async () => {
    proxy = await startFlakyProxy(server.port, [
      { drop: true },
      { drop: true },
      { drop: true },
      // Open a few seconds, less than the 10 s that count as a working connection.
      { holdMs: 3000 },
      // Open long enough to count as working.
      { holdMs: 12_000 },
      { drop: true },
    ]);
    const { page, context, errors } = await openViewer(browser, proxy.baseUrl);
    contexts.push(context);
    const sockets = proxy.sockets;
    const waitForSockets = (n: number, timeout: number) =>
      expect.poll(() => sockets.length, { timeout, interval: 20 }).toBeGreaterThanOrEqual(n);

    // The 4th connection is held: the page really is live on it (open, not a failed handshake).
    await waitForSockets(4, 15_000);
    await page.waitForFunction(() => window.stackcast.state === 'live', undefined, { timeout: 2000 });
    // The 5th, held 12 s: still live after the 10 s that make the connection count as working.
    await waitForSockets(5, 15_000);
    await page.waitForFunction(() => window.stackcast.state === 'live', undefined, { timeout: 2000 });
    await new Promise((resolve) => setTimeout(resolve, 10_500));
    expect((await hook(page)).state).toBe('live');
    await waitForSockets(7, 10_000);

    // Each delay: from the proxy closing one connection to the page's next upgrade request.
    const delays = sockets.slice(0, 6).map((s, i) => sockets[i + 1].openedAt - s.closedAt!);
    // The viewer's schedule: 1 s doubling per failure, at most 10 s, each with ±15 % jitter,
    // and back to 1 s once a connection has lasted 10 s.
    const expected = [1000, 2000, 4000, 8000, 1000, 2000];
    delays.forEach((delay, i) => {
      const want = expected[i];
      expect(delay, `delay ${i + 1} (all: ${JSON.stringify(delays)})`).toBeGreaterThanOrEqual(want * 0.85 - 50);
      expect(delay, `delay ${i + 1} (all: ${JSON.stringify(delays)})`).toBeLessThanOrEqual(want * 1.15 + 500);
    });

    // Every one of those connections did open in the page (so each also caught up on the image).
    await expect.poll(async () => (await hook(page)).connects).toBe(7);
    expect(errors).toEqual([]);
  }, 90_000);
  it('gives up on a download that stops sending bytes after 10 s without any, then loads the image again', async () => {
    // WebSockets held open: the page is live and asks for the image at start and on connect.
    proxy = await startFlakyProxy(server.port, [{ holdMs: 60_000 }], { stallFirstImage: true });
    const { page, context, errors } = await openViewer(browser, proxy.baseUrl);
    contexts.push(context);
    const failed: string[] = [];
    page.on('requestfailed', (request) => {
      if (request.url().includes('/web_image.jpg')) {
        failed.push(request.url());
      }
    });
    const stalledProxy = proxy;

    await expect.poll(() => stalledProxy.stalled?.abortedAt, { timeout: 20_000, interval: 50 }).toBeDefined();
    const { stalledAt, abortedAt } = stalledProxy.stalled!;
    // Abandoned for want of bytes: 10 s after the last one, not sooner, not much later.
    expect(abortedAt! - stalledAt).toBeGreaterThanOrEqual(9500);
    expect(abortedAt! - stalledAt).toBeLessThanOrEqual(12_000);

    // The load asked for meanwhile (on connect) then runs and shows the image.
    await page.waitForFunction(() => window.stackcast.imageSeq > 0 && !window.stackcast.busy, undefined, { timeout: 10_000 });
    const waiting = Buffer.from(await (await fetch(`${server.baseUrl}/web_image.jpg`)).arrayBuffer());
    await waitForImageShown(page, waiting);
    expect(failed).toHaveLength(1);
    expect(stalledProxy.requests.filter((path) => path.startsWith('/web_image.jpg'))).toHaveLength(2);
    expect(errors).toEqual([]);
  }, 60_000);
});
