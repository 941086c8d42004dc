// The real Chromium "phone" of the field bench. Every HTTP request the page makes is
// recorded from Chrome's own network log (CDP Network events): URL, status, bytes on the
// wire (encodedDataLength: headers + body as received), start and end. Whatever the viewer
// fetches (a whole JPEG today, a DZI and tiles tomorrow) is what gets recorded and replayed.
import { chromium } from 'playwright-core';
import { nowMs, sleep } from './proc.mjs';

export const DEVICES = {
  phone: { viewport: { width: 390, height: 844 }, deviceScaleFactor: 3, isMobile: true, hasTouch: true },
  desktop: { viewport: { width: 1920, height: 1080 }, deviceScaleFactor: 1, isMobile: false, hasTouch: false },
};

/** Debian's Chromium with the flags of test/browser/browser.ts. */
export function launchChromium() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
}

/** Reads the viewer's own "images shown" counter (window.stackcast); null without the hook. */
const imagesShown = (page) => page.evaluate(() => (typeof window.stackcast?.imagesShown === 'number' ? window.stackcast.imagesShown : null)).catch(() => null);

/** The lobby's counter of lists received (window.stackcastLobby.lists); null without it. */
export const lobbyLists = (page) => page.evaluate(() => (typeof window.stackcastLobby?.lists === 'number' ? window.stackcastLobby.lists : null)).catch(() => null);

export class RecordedPage {
  /** `counter`: the page's hook that goes up when an update is shown (the viewer's imagesShown by default). */
  static async open(browser, device, counter = imagesShown) {
    const context = await browser.newContext(DEVICES[device]);
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    const self = new RecordedPage(context, page, cdp);
    self.counter = counter;
    await cdp.send('Network.enable');
    cdp.on('Network.requestWillBeSent', (e) => self.onStart(e));
    cdp.on('Network.requestServedFromCache', (e) => self.byId.get(e.requestId) && (self.byId.get(e.requestId).fromCache = true));
    cdp.on('Network.responseReceived', (e) => self.onResponse(e));
    cdp.on('Network.loadingFinished', (e) => self.onEnd(e, false));
    cdp.on('Network.loadingFailed', (e) => self.onEnd(e, true));
    // Server-to-client frames: payload plus the 2-10 byte frame header (no mask).
    cdp.on('Network.webSocketFrameReceived', (e) => {
      const n = Buffer.byteLength(e.response.payloadData ?? '');
      self.frames.push({ at: nowMs(), bytes: n + (n < 126 ? 2 : n < 65536 ? 4 : 10) });
    });
    return self;
  }

  constructor(context, page, cdp) {
    this.context = context;
    this.page = page;
    this.cdp = cdp;
    this.byId = new Map();
    this.entries = [];
    this.frames = [];
    this.inflight = new Set();
    this.lastActivity = nowMs();
  }

  onStart(e) {
    if (!/^https?:/.test(e.request.url)) {
      return; // data: and blob: URLs never touch the network
    }
    if (e.redirectResponse && this.byId.has(e.requestId)) {
      this.byId.get(e.requestId).redirected = true;
    }
    const entry = { url: e.request.url, method: e.request.method, type: e.type, start: nowMs(), end: NaN, status: 0, bytes: 0, fromCache: false, failed: false };
    this.byId.set(e.requestId, entry);
    this.entries.push(entry);
    this.inflight.add(e.requestId);
    this.lastActivity = entry.start;
  }

  onResponse(e) {
    const entry = this.byId.get(e.requestId);
    if (entry) {
      entry.status = e.response.status;
      entry.fromCache ||= Boolean(e.response.fromDiskCache || e.response.fromServiceWorker || e.response.fromPrefetchCache);
      entry.contentEncoding = e.response.headers['content-encoding'] ?? e.response.headers['Content-Encoding'] ?? null;
    }
  }

  onEnd(e, failed) {
    const entry = this.byId.get(e.requestId);
    if (!entry) {
      return;
    }
    entry.end = nowMs();
    entry.failed = failed;
    entry.bytes = failed ? 0 : e.encodedDataLength;
    this.inflight.delete(e.requestId);
    this.lastActivity = entry.end;
  }

  /** Starts a fresh recording: everything requested from now on. */
  begin() {
    this.entries = [];
    this.frames = [];
    this.lastActivity = nowMs();
  }

  /**
   * Waits until the viewer says a new image is shown (its imagesShown counter passed
   * `shownBefore`; skipped when the page has no such hook) and then the network has been
   * quiet for `idleMs` (late tiles, data.json). Returns when the image was shown.
   */
  async waitShownAndIdle(shownBefore, { idleMs = 750, timeoutMs = 120_000 } = {}) {
    const deadline = nowMs() + timeoutMs;
    let shownAt = null;
    const hook = (await this.counter(this.page)) !== null || shownBefore > 0;
    while (nowMs() < deadline) {
      if (shownAt === null && hook) {
        const n = await this.counter(this.page);
        if (n !== null && n > shownBefore) {
          shownAt = nowMs();
        }
      }
      const quiet = this.inflight.size === 0 && nowMs() - this.lastActivity >= idleMs && this.entries.length > 0;
      if (quiet && (shownAt !== null || !hook)) {
        return { shownAt: shownAt ?? this.lastActivity, hook };
      }
      await sleep(20);
    }
    throw new Error(`the viewer did not show the image within ${timeoutMs} ms (hook ${hook}, ${this.inflight.size} requests open)`);
  }

  /** The requests of the current recording that reached the server. */
  networkEntries() {
    return this.entries.filter((e) => !e.fromCache && !e.failed && Number.isFinite(e.end));
  }

  shownCount() {
    return this.counter(this.page).then((n) => n ?? 0);
  }

  close() {
    return this.context.close();
  }
}
