/// <reference lib="dom" />
// The functions passed to page.evaluate / waitForFunction run in the page, hence the DOM lib.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import type { Colour } from '../helpers/images.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

/** A spec file's real server and Chromium, and the browser contexts its current test opened. */
export interface SharedServerAndBrowser {
  readonly server: TestServer;
  readonly browser: Browser;
  /** Closed after each test. */
  readonly contexts: BrowserContext[];
}

/**
 * One real server (port 0) and one Chromium for a spec file: started before its tests, each
 * test's browser contexts closed after it, both closed at the end.
 */
export function sharedServerAndBrowser(): SharedServerAndBrowser {
  const shared = { contexts: [] as BrowserContext[] } as { server: TestServer; browser: Browser; contexts: BrowserContext[] };
  beforeAll(async () => {
    [shared.server, shared.browser] = await Promise.all([startTestServer(), launchBrowser()]);
  });
  afterEach(async () => {
    await Promise.all(shared.contexts.splice(0).map((c) => c.close()));
  });
  afterAll(async () => {
    await shared.browser?.close();
    await shared.server?.close();
  });
  return shared;
}

/** Debian's Chromium; never a browser downloaded by a tool. */
export const CHROMIUM = '/usr/bin/chromium';

export const SCREENSHOTS = fileURLToPath(new URL('../../test-output/screenshots/', import.meta.url));

/** Launches headless Chromium with nothing that talks to the internet (plus `extraArgs`). */
export function launchBrowser(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
      ...extraArgs,
    ],
  });
}

/** The viewer's read-only test hook (`window.stackcast`, see viewer.js). */
export interface ViewerHook {
  state: 'connecting' | 'live' | 'reconnecting' | 'stopped';
  imageSeq: number;
  requestedSeq: number;
  busy: boolean;
  imagesShown: number;
  stackSize: number | null;
  exposure: string | null;
  lastImageAt: number;
  connects: number;
  lastConnectedAt: number;
  nextRetryAt: number;
  received: { new_image: number; hello: number; disconnect: number; ignored: number };
  nightMode: boolean;
  worldItems: number;
  /** Version on screen; 0 for none or the plain web_image.jpg. */
  version: number;
  latestVersion: number;
  loadingVersion: number;
  versionsShown: number;
  viewer: OsdViewer;
}

/** The few OpenSeadragon calls the tests make. */
export interface OsdViewer {
  isFullPage(): boolean;
  viewport: {
    getZoom(current?: boolean): number;
    getHomeZoom(): number;
    getCenter(current?: boolean): { x: number; y: number };
    zoomTo(zoom: number, refPoint?: { x: number; y: number }, immediately?: boolean): unknown;
    panTo(center: { x: number; y: number }, immediately?: boolean): unknown;
    viewportToViewerElementRectangle(rect: OsdRect): OsdRect;
  };
  world: { getItemCount(): number; getItemAt(index: number): OsdTiledImage | undefined };
}

export interface OsdRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface OsdTiledImage {
  getBounds(current?: boolean): OsdRect;
  getOpacity(): number;
  source: { dimensions: { x: number; y: number } };
}

declare global {
  interface Window {
    stackcast: ViewerHook;
    OpenSeadragon: { Point: new (x: number, y: number) => { x: number; y: number } };
  }
}

export interface OpenedPage {
  page: Page;
  context: BrowserContext;
  /** Page errors and console errors, minus the expected failed reconnects. */
  errors: string[];
}

/**
 * A fresh context (own localStorage) and page on the viewer. Console errors are collected so
 * a test can assert the page never threw; refused WebSocket handshakes and 503s while the
 * server is down are expected and not counted.
 */
export async function openViewer(
  browser: Browser,
  baseUrl: string,
  viewport: { width: number; height: number } = { width: 1280, height: 800 },
  options: { deviceScaleFactor?: number; isMobile?: boolean; hasTouch?: boolean; withoutVersions?: boolean } = {},
): Promise<OpenedPage> {
  const { withoutVersions, ...device } = options;
  const context = await browser.newContext({ viewport, ...device });
  const page = await context.newPage();
  // Injected by the browser, not by the page: the viewer's CSP forbids eval'd strings.
  await page.addInitScript({ content: `window.__readCanvasColour = ${readCanvasColour.toString()};` });
  if (withoutVersions) {
    await hideVersions(page);
  }
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    const text = message.text();
    // A tile refused during STOP (503) or pruned (404) is retried by the viewer; tests check the canvas.
    const expected = /WebSocket connection to|Failed to load resource|ERR_CONNECTION_REFUSED|503|image refresh failed|Tile .* failed to load/.test(text);
    if (message.type() === 'error' && !expected) {
      errors.push(`console: ${text}`);
    }
  });
  await page.goto(`${baseUrl}/`);
  return { page, context, errors };
}

/**
 * The page sees a server without versions (ALS's, or stackcast before them): `version`
 * leaves the /ws messages and `VERSION` leaves data.json, so the viewer takes web_image.jpg.
 */
export async function hideVersions(page: Page): Promise<void> {
  await page.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer();
    server.onMessage((message) => {
      if (typeof message !== 'string') {
        ws.send(message);
        return;
      }
      const parsed = JSON.parse(message) as Record<string, unknown>;
      delete parsed.version;
      ws.send(JSON.stringify(parsed));
    });
  });
  await page.route('**/data.json*', async (route) => {
    const response = await route.fetch();
    const json = (await response.json()) as Record<string, unknown>;
    delete json.VERSION;
    await route.fulfill({ response, json });
  });
}

/** A snapshot of the viewer's test hook. */
export function hook(page: Page): Promise<Omit<ViewerHook, 'viewer'>> {
  return page.evaluate(() => {
    const s = window.stackcast;
    return {
      state: s.state,
      imageSeq: s.imageSeq,
      requestedSeq: s.requestedSeq,
      busy: s.busy,
      imagesShown: s.imagesShown,
      stackSize: s.stackSize,
      exposure: s.exposure,
      lastImageAt: s.lastImageAt,
      connects: s.connects,
      lastConnectedAt: s.lastConnectedAt,
      nextRetryAt: s.nextRetryAt,
      received: s.received,
      nightMode: s.nightMode,
      worldItems: s.worldItems,
      version: s.version,
      latestVersion: s.latestVersion,
      loadingVersion: s.loadingVersion,
      versionsShown: s.versionsShown,
    };
  });
}

export interface Box {
  /** Fractions of the canvas, 0..1. */
  x: number;
  y: number;
  width: number;
  height: number;
}

const CENTRE: Box = { x: 0.45, y: 0.45, width: 0.1, height: 0.1 };

/**
 * Mean colour of a region of OpenSeadragon's canvas, read with getImageData: what is
 * really drawn, not what was requested. Null before the canvas exists.
 */
export function canvasColour(page: Page, box: Box = CENTRE): Promise<(Colour & { a: number }) | null> {
  return page.evaluate(readCanvasColour, box);
}

/** What {@link openViewer} installs in the page. */
interface InPage {
  __readCanvasColour: typeof readCanvasColour;
}

/** Runs in the page (also installed there by openViewer), so it must stay self-contained. */
function readCanvasColour(box: { x: number; y: number; width: number; height: number }): { r: number; g: number; b: number; a: number } | null {
  const canvas = document.querySelector<HTMLCanvasElement>('#viewer .openseadragon-canvas canvas');
  const ctx = canvas?.getContext('2d', { willReadFrequently: true });
  if (!canvas || !ctx || canvas.width === 0 || canvas.height === 0) {
    return null;
  }
  const x = Math.floor(canvas.width * box.x);
  const y = Math.floor(canvas.height * box.y);
  const w = Math.max(1, Math.floor(canvas.width * box.width));
  const h = Math.max(1, Math.floor(canvas.height * box.height));
  const data = ctx.getImageData(x, y, w, h).data;
  let r = 0;
  let g = 0;
  let b = 0;
  let a = 0;
  const n = data.length / 4;
  for (let i = 0; i < data.length; i += 4) {
    r += data[i];
    g += data[i + 1];
    b += data[i + 2];
    a += data[i + 3];
  }
  return { r: Math.round(r / n), g: Math.round(g / n), b: Math.round(b / n), a: Math.round(a / n) };
}

/**
 * Mean colour of the canvas over the area where the image is drawn (inset a little, away
 * from the resampled edges), and the drawn image's size in image pixels.
 */
export function imageAreaColour(page: Page): Promise<{ colour: Colour & { a: number }; width: number; height: number } | null> {
  return page.evaluate(() => {
    const v = window.stackcast.viewer;
    const item = v.world.getItemAt(0);
    const canvas = document.querySelector<HTMLCanvasElement>('#viewer .openseadragon-canvas canvas');
    const ctx = canvas?.getContext('2d', { willReadFrequently: true });
    if (!item || !canvas || !ctx) {
      return null;
    }
    const scale = canvas.width / canvas.clientWidth;
    const r = v.viewport.viewportToViewerElementRectangle(item.getBounds(true));
    const left = Math.max(0, Math.ceil((r.x + r.width * 0.03) * scale));
    const top = Math.max(0, Math.ceil((r.y + r.height * 0.03) * scale));
    const right = Math.min(canvas.width, Math.floor((r.x + r.width * 0.97) * scale));
    const bottom = Math.min(canvas.height, Math.floor((r.y + r.height * 0.97) * scale));
    const data = ctx.getImageData(left, top, right - left, bottom - top).data;
    const sum = [0, 0, 0, 0];
    for (let i = 0; i < data.length; i += 4) {
      sum[0] += data[i];
      sum[1] += data[i + 1];
      sum[2] += data[i + 2];
      sum[3] += data[i + 3];
    }
    const n = data.length / 4;
    const [mr, mg, mb, ma] = sum.map((x) => Math.round(x / n));
    return { colour: { r: mr, g: mg, b: mb, a: ma }, width: item.source.dimensions.x, height: item.source.dimensions.y };
  });
}

/** Mean colour of a JPEG over the same inset area as {@link imageAreaColour}. */
export async function fileAreaColour(jpeg: Buffer): Promise<Colour> {
  const { width = 0, height = 0 } = await sharp(jpeg).metadata();
  const left = Math.ceil(width * 0.03);
  const top = Math.ceil(height * 0.03);
  const region = { left, top, width: Math.floor(width * 0.97) - left, height: Math.floor(height * 0.97) - top };
  return (await channelStats(jpeg, region)).mean;
}

export function close(a: Colour, b: Colour, tolerance = 14): boolean {
  return Math.abs(a.r - b.r) <= tolerance && Math.abs(a.g - b.g) <= tolerance && Math.abs(a.b - b.b) <= tolerance;
}

/** Waits until the canvas region shows `colour` (opaque), within a JPEG-sized tolerance. */
/**
 * Waits until the image area of the canvas is fully drawn with `jpeg`'s colour (and, when
 * given, at `width` image pixels): the published image is really on screen.
 */
export async function waitForImageShown(page: Page, jpeg: Buffer, { width, timeout = 10_000 }: { width?: number; timeout?: number } = {}): Promise<void> {
  const want = await fileAreaColour(jpeg);
  await expect
    .poll(
      async () => {
        const drawn = await imageAreaColour(page);
        return drawn !== null && drawn.colour.a === 255 && (width === undefined || drawn.width === width) && close(drawn.colour, want, 4);
      },
      { timeout },
    )
    .toBe(true);
}

export async function waitForCanvasColour(page: Page, colour: Colour, options: { box?: Box; timeout?: number; tolerance?: number } = {}): Promise<void> {
  const { box = CENTRE, timeout = 15_000, tolerance = 14 } = options;
  try {
    await page.waitForFunction(
      ({ box: area, want, t }) => {
        const c = (window as unknown as InPage).__readCanvasColour(area);
        return !!c && c.a === 255 && Math.abs(c.r - want.r) <= t && Math.abs(c.g - want.g) <= t && Math.abs(c.b - want.b) <= t;
      },
      { box, want: colour, t: tolerance },
      { timeout },
    );
  } catch (error) {
    const seen = await canvasColour(page, box).catch(() => null);
    throw new Error(`canvas never showed ${JSON.stringify(colour)} (last seen ${JSON.stringify(seen)}): ${String(error)}`);
  }
}

/**
 * Records the canvas centre colour at every animation frame, from now on. Read the list with
 * {@link recordedFrames}: it is what a person would have seen, frame by frame.
 */
export async function recordFrames(page: Page, box: Box = CENTRE): Promise<void> {
  await page.evaluate((area) => {
    const w = window as unknown as InPage & { __frames: unknown[]; __recording: boolean };
    w.__frames = [];
    w.__recording = true;
    const step = (): void => {
      if (!w.__recording) {
        return;
      }
      w.__frames.push(w.__readCanvasColour(area));
      requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  }, box);
}

export function recordedFrames(page: Page): Promise<Array<(Colour & { a: number }) | null>> {
  return page.evaluate(() => {
    const w = window as unknown as { __frames: Array<{ r: number; g: number; b: number; a: number } | null>; __recording: boolean };
    w.__recording = false;
    return w.__frames;
  });
}

/** Saves a screenshot for a person to look at, and returns its PNG bytes. */
export async function screenshot(page: Page, name: string): Promise<Buffer> {
  await mkdir(SCREENSHOTS, { recursive: true });
  const png = await page.screenshot();
  await writeFile(join(SCREENSHOTS, `${name}.png`), png);
  return png;
}

/** Per-channel statistics of an image (a screenshot): mean and max of R, G, B. */
export async function channelStats(png: Buffer, region?: { left: number; top: number; width: number; height: number }): Promise<{ mean: Colour; max: Colour }> {
  const image = region ? sharp(png).extract(region) : sharp(png);
  const { channels } = await image.stats();
  return {
    mean: { r: channels[0].mean, g: channels[1].mean, b: channels[2].mean },
    max: { r: channels[0].max, g: channels[1].max, b: channels[2].max },
  };
}

/** A JPEG of two solid halves (left, right), to tell a zoomed view from the whole image. */
export function makeSplitJpeg(width: number, height: number, left: Colour, right: Colour): Promise<Buffer> {
  const half = Math.floor(width / 2);
  return sharp({ create: { width, height, channels: 3, background: right } })
    .composite([{ input: { create: { width: half, height, channels: 3, background: left } }, left: 0, top: 0 }])
    .jpeg({ quality: 92 })
    .toBuffer();
}

/** A made-up star field with a nebula, so the screenshots look like a night's work. */
export function makeSkyJpeg(width = 1600, height = 1067): Promise<Buffer> {
  let seed = 7;
  const random = () => {
    seed = (seed * 48_271) % 2_147_483_647;
    return seed / 2_147_483_647;
  };
  const stars = Array.from({ length: 420 }, () => {
    const r = random() < 0.92 ? 0.6 + random() * 1.2 : 2 + random() * 2.5;
    const tint = ['#ffffff', '#cfe0ff', '#ffe7c4', '#ffd0a8'][Math.floor(random() * 4)];
    return `<circle cx="${(random() * width).toFixed(1)}" cy="${(random() * height).toFixed(1)}" r="${r.toFixed(2)}" fill="${tint}" fill-opacity="${(0.5 + random() * 0.5).toFixed(2)}"/>`;
  }).join('');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
  <defs>
    <radialGradient id="sky" cx="50%" cy="50%" r="75%"><stop offset="0" stop-color="#0d1226"/><stop offset="1" stop-color="#020307"/></radialGradient>
    <radialGradient id="neb1" cx="50%" cy="50%" r="50%"><stop offset="0" stop-color="#ff5a7a" stop-opacity="0.75"/><stop offset="1" stop-color="#ff5a7a" stop-opacity="0"/></radialGradient>
    <radialGradient id="neb2" cx="50%" cy="50%" r="50%"><stop offset="0" stop-color="#5ab4ff" stop-opacity="0.6"/><stop offset="1" stop-color="#5ab4ff" stop-opacity="0"/></radialGradient>
  </defs>
  <rect width="100%" height="100%" fill="url(#sky)"/>
  <ellipse cx="${width * 0.52}" cy="${height * 0.5}" rx="${width * 0.28}" ry="${height * 0.22}" fill="url(#neb1)" transform="rotate(-18 ${width * 0.52} ${height * 0.5})"/>
  <ellipse cx="${width * 0.46}" cy="${height * 0.47}" rx="${width * 0.16}" ry="${height * 0.14}" fill="url(#neb2)"/>
  ${stars}
</svg>`;
  return sharp(Buffer.from(svg)).jpeg({ quality: 88 }).toBuffer();
}

/**
 * A JPEG of per-pixel noise around `colour` (each channel ±40, seeded): it hardly compresses,
 * so its size in bytes is close to what a real night's image weighs (2200 x 1500 at quality
 * 92: about 1.9 MB), while its mean colour still tells it apart on the canvas.
 */
export function makeNoiseJpeg(width: number, height: number, colour: Colour, seed = 12_345): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  const base = [colour.r, colour.g, colour.b];
  let state = seed >>> 0;
  for (let i = 0; i < raw.length; i++) {
    state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0;
    raw[i] = Math.max(0, Math.min(255, base[i % 3] + ((state >>> 16) % 81) - 40));
  }
  return sharp(raw, { raw: { width, height, channels: 3 } }).jpeg({ quality: 92 }).toBuffer();
}

/** What the page shows from image pixel (`x`, `y`) on, a `size` × `size` square of the screen, as raw RGB. */
export async function shownAt(page: Page, x: number, y: number, size = 200): Promise<Buffer> {
  const origin = await page.evaluate(
    ([px, py]) => {
      const v = window.stackcast.viewer as unknown as { viewport: { imageToViewerElementCoordinates(p: unknown): { x: number; y: number } } };
      return v.viewport.imageToViewerElementCoordinates(new window.OpenSeadragon.Point(px, py));
    },
    [x, y],
  );
  const png = await page.screenshot({ clip: { x: Math.round(origin.x), y: Math.round(origin.y), width: size, height: size } });
  return sharp(png).removeAlpha().raw().toBuffer();
}

/** The `size` × `size` square of `image` from (`left`, `top`), as raw RGB: what {@link shownAt} should match. */
export function sourceAt(image: Buffer, left: number, top: number, size = 200): Promise<Buffer> {
  return sharp(image).extract({ left, top, width: size, height: size }).raw().toBuffer();
}

/** Mean absolute difference of two raw buffers of the same length, per sample. */
export function meanAbsoluteError(a: Buffer, b: Buffer): number {
  return a.reduce((n, v, i) => n + Math.abs(v - b[i]), 0) / a.length;
}
