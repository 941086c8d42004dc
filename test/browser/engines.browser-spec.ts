/// <reference lib="dom" />
// The functions passed to evaluate / waitFor run in the page, hence the DOM lib.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeJpeg, type Colour } from '../helpers/images.js';
import { spawnService, type SpawnedService } from '../helpers/spawn-service.js';
import { makeTempFolder } from '../helpers/temp-folder.js';
import { launchEngine, type Engine, type EngineName, type EnginePage } from './engines.js';

/** In the page: the mean colour of the middle of OpenSeadragon's canvas (what is really drawn). */
function centreColour(): { r: number; g: number; b: number; a: number } | null {
  const canvas = document.querySelector<HTMLCanvasElement>('#viewer .openseadragon-canvas canvas');
  const ctx = canvas?.getContext('2d');
  if (!canvas || !ctx || canvas.width === 0 || canvas.height === 0) {
    return null;
  }
  const w = Math.max(1, Math.floor(canvas.width / 10));
  const h = Math.max(1, Math.floor(canvas.height / 10));
  const data = ctx.getImageData(Math.floor(canvas.width * 0.45), Math.floor(canvas.height * 0.45), w, h).data;
  const sum = [0, 0, 0, 0];
  for (let i = 0; i < data.length; i += 4) {
    for (let c = 0; c < 4; c++) {
      sum[c] += data[i + c];
    }
  }
  const n = data.length / 4;
  return { r: Math.round(sum[0] / n), g: Math.round(sum[1] / n), b: Math.round(sum[2] / n), a: Math.round(sum[3] / n) };
}

/** In the page: the canvas centre shows `want` (opaque, within a JPEG's tolerance) at stack size `stack`. */
function showsImage(want: { r: number; g: number; b: number }, stack: number, version: number): boolean {
  const canvas = document.querySelector<HTMLCanvasElement>('#viewer .openseadragon-canvas canvas');
  const ctx = canvas?.getContext('2d');
  if (!canvas || !ctx || canvas.width === 0) {
    return false;
  }
  const d = ctx.getImageData(Math.floor(canvas.width / 2), Math.floor(canvas.height / 2), 1, 1).data;
  const near = (a: number, b: number): boolean => Math.abs(a - b) <= 14;
  return (
    d[3] === 255 &&
    near(d[0], want.r) &&
    near(d[1], want.g) &&
    near(d[2], want.b) &&
    document.getElementById('stack-size')?.textContent === String(stack) &&
    window.stackcast.version === version
  );
}

/** The canvas centre's colour once it is opaque, or as it is after `timeout` ms. */
async function drawnCentre(page: EnginePage, timeout = 15_000): Promise<ReturnType<typeof centreColour>> {
  const deadline = Date.now() + timeout;
  for (;;) {
    const colour = await page.evaluate(centreColour);
    if (colour?.a === 255 || Date.now() > deadline) {
      return colour;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const ENGINES: EngineName[] = ['chromium', 'firefox', 'webkit'];

// One built service (`npm run build` first), shared by the three engines, killed and started
// again on the same port for the reconnect scenario.
describe('the viewer in every engine', () => {
  let work: { path: string; remove(): Promise<void> };
  let env: Record<string, string>;
  let service: SpawnedService;
  let stack = 0;

  async function publish(colour: Colour): Promise<{ stack: number; version: number }> {
    stack += 1;
    const body = await makeJpeg({ width: 960, height: 640, color: colour });
    const res = await fetch(`${service.baseUrl}/api/image?stackSize=${stack}&exposure=${stack * 60}`, {
      method: 'PUT',
      headers: { 'Content-Type': 'image/jpeg', Authorization: `Bearer ${env.CONTROL_TOKEN}` },
      body: new Uint8Array(body),
    });
    expect(res.status).toBeLessThan(300);
    const status = (await (await fetch(`${service.baseUrl}/status`)).json()) as { version: number };
    return { stack, version: status.version };
  }

  beforeAll(async () => {
    work = await makeTempFolder();
    env = { WORK_FOLDER: work.path, CONTROL_TOKEN: randomBytes(16).toString('hex') };
    service = await spawnService(env);
    env.PORT = String(service.port);
  });

  afterAll(async () => {
    await service?.kill('SIGKILL');
    await work?.remove();
  });

  describe.each(ENGINES)('%s', (name) => {
    let engine: Engine;
    let page: EnginePage;

    beforeAll(async () => {
      engine = await launchEngine(name);
      page = await engine.newPage();
    });

    afterAll(async () => {
      await page?.close();
      await engine?.close();
    });

    it('loads, draws the current image and goes live', async () => {
      await page.goto(`${service.baseUrl}/`);
      await page.waitFor('the viewer to be live with an image', () => window.stackcast?.state === 'live' && window.stackcast.imageSeq > 0, []);
      // Errors thrown from now on are collected for the last scenario's check.
      await page.evaluate(() => {
        const w = window as unknown as { __errors: string[] };
        w.__errors = [];
        window.addEventListener('error', (event) => w.__errors.push(String(event.message)));
        window.addEventListener('unhandledrejection', (event) => w.__errors.push(String(event.reason)));
      });
      expect(await page.evaluate(() => document.getElementById('conn-text')?.textContent)).toBe('live');
      // The image is revealed (opacity 1) in one task and painted at the next animation frame,
      // which a busy machine's WebKit can run a while later: read the canvas until it is painted.
      const drawn = await drawnCentre(page);
      expect(drawn?.a).toBe(255);
    });

    it('swaps to a new version live', async () => {
      const colour: Colour = { r: 200, g: 60, b: 160 };
      const { stack: n, version } = await publish(colour);
      await page.waitFor(`version ${version} drawn`, showsImage, [colour, n, version]);
      expect(await page.evaluate(() => document.getElementById('exposure')?.textContent)).toBe(`0:0${n}:00`);
    });

    it('zooms in with the zoom button and the keyboard', async () => {
      const home = await page.evaluate(() => window.stackcast.viewer.viewport.getHomeZoom());
      await page.click('#viewer div[title="Zoom in"]');
      await page.waitFor('a zoom past home', (h: number) => window.stackcast.viewer.viewport.getZoom() > h * 1.2, [home]);
      await page.click('#viewer div[title="Go home"]');
      await page.waitFor('the home view', (h: number) => Math.abs(window.stackcast.viewer.viewport.getZoom() - h) < h * 0.01, [home]);
      // The keyboard last: OpenSeadragon completes a short key press's zoom over a few frames.
      await page.evaluate(() => document.querySelector<HTMLElement>('#viewer .openseadragon-canvas')?.focus());
      await page.press('=');
      await page.waitFor('a keyboard zoom', (h: number) => window.stackcast.viewer.viewport.getZoom() > h * 1.01, [home]);
    });

    it('shows an operator notice', async () => {
      const text = `Clouds coming in (${name})`;
      const res = await fetch(`${service.baseUrl}/api/messages`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${env.CONTROL_TOKEN}` },
        body: JSON.stringify({ text }),
      });
      expect(res.status).toBeLessThan(300);
      await page.waitFor('the notice', (t: string) => [...document.querySelectorAll('#notices .notice p')].some((p) => p.textContent === t), [text]);
      const shown = await page.evaluate(() => {
        const card = document.querySelector<HTMLElement>('#notices .notice');
        const box = card?.getBoundingClientRect();
        return { visible: !!box && box.width > 0 && box.height > 0, live: document.getElementById('notices')?.getAttribute('aria-live') };
      });
      expect(shown).toEqual({ visible: true, live: 'polite' });
      await page.click('#notices .notice-close');
      await page.waitFor('the notice dismissed', () => document.querySelectorAll('#notices .notice').length === 0, []);
    });

    it('turns night mode on and off', async () => {
      await page.click('#night-toggle');
      await page.waitFor('night mode on', () => document.documentElement.classList.contains('night'), []);
      const on = await page.evaluate(() => ({
        pressed: document.getElementById('night-toggle')?.getAttribute('aria-pressed'),
        filter: getComputedStyle(document.body).filter,
        stored: localStorage.getItem('stackcast.nightMode'),
      }));
      expect(on.pressed).toBe('true');
      expect(on.filter).toContain('night-red');
      expect(on.stored).toBe('on');
      await page.click('#night-toggle');
      await page.waitFor('night mode off', () => !document.documentElement.classList.contains('night'), []);
      expect(await page.evaluate(() => [getComputedStyle(document.body).filter, document.getElementById('night-toggle')?.getAttribute('aria-pressed')])).toEqual([
        'none',
        'false',
      ]);
    });

    it('works from the keyboard: Enter and Space on the night toggle, Space and Enter on the zoom buttons', async () => {
      await page.evaluate(() => document.getElementById('night-toggle')?.focus());
      await page.press('Enter');
      await page.waitFor('night mode on by Enter', () => window.stackcast.nightMode, []);
      await page.press(' ');
      await page.waitFor('night mode off by Space', () => !window.stackcast.nightMode, []);
      const home = await page.evaluate(() => window.stackcast.viewer.viewport.getHomeZoom());
      await page.evaluate(() => document.querySelector<HTMLElement>('#viewer [aria-label="Zoom in"]')?.focus());
      await page.press(' ');
      await page.waitFor('a zoom by Space', (h: number) => window.stackcast.viewer.viewport.getZoom() > h * 1.2, [home]);
      await page.evaluate(() => document.querySelector<HTMLElement>('#viewer [aria-label="Go home"]')?.focus());
      await page.press('Enter');
      await page.waitFor('home by Enter', (h: number) => Math.abs(window.stackcast.viewer.viewport.getZoom() - h) < h * 0.01, [home]);
    });

    it('reconnects by itself when the service is killed and started again, then follows new images', async () => {
      const connects = await page.evaluate(() => window.stackcast.connects);
      expect(await service.kill('SIGKILL')).toBeNull();
      await page.waitFor('the page to notice the loss', () => window.stackcast.state === 'reconnecting', []);
      // Generous: on a loaded CI machine next to three browsers, Node's start can be slow.
      service = await spawnService(env, 60_000);
      // The retry backoff is at most 10 s plus jitter.
      await page.waitFor('live again', (c: number) => window.stackcast.state === 'live' && window.stackcast.connects === c + 1, [connects], 25_000);
      const colour: Colour = { r: 60, g: 200, b: 120 };
      const { stack: n, version } = await publish(colour);
      await page.waitFor(`version ${version} drawn after the restart`, showsImage, [colour, n, version]);
      expect(await page.evaluate(() => (window as unknown as { __errors: string[] }).__errors)).toEqual([]);
    });
  });
});
