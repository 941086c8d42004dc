/// <reference lib="dom" />
// The functions passed to page.evaluate run in the page, hence the DOM lib.
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { makeJpeg } from '../helpers/images.js';
import { sharedServerAndBrowser } from './browser.js';

interface WallHook {
  every: number;
  scope: string | null;
  version: number;
  swaps: number;
  rotations: number;
}

/** What each animation frame showed: whether a fully opaque layer held a whole decoded image, and its src. */
interface Frame {
  whole: boolean;
  src: string;
}

describe('the wall: the live scopes in turn on a projector (Chromium)', () => {
  const suite = sharedServerAndBrowser();

  async function open(path: string, init?: (page: Page) => Promise<void>): Promise<{ page: Page; console: string[] }> {
    const context = await suite.browser.newContext({ viewport: { width: 1280, height: 720 } });
    suite.contexts.push(context);
    const page = await context.newPage();
    const console: string[] = [];
    page.on('console', (message) => console.push(`${message.type()}: ${message.text()}`));
    await init?.(page);
    await page.goto(`${suite.server.baseUrl}${path}`);
    return { page, console };
  }

  const wall = (page: Page): Promise<WallHook> =>
    page.evaluate(() => {
      const w = (window as unknown as { stackcastWall: WallHook }).stackcastWall;
      return { every: w.every, scope: w.scope, version: w.version, swaps: w.swaps, rotations: w.rotations };
    });

  /** Publishes into `path` (`/api/image` or `/s/<id>/api/image`); resolves with the scope's version. */
  async function publish(path: string, stackSize: number, colour: { r: number; g: number; b: number }): Promise<number> {
    const jpeg = await makeJpeg({ width: 800, height: 500, color: colour });
    const res = await fetch(`${suite.server.baseUrl}${path}?stackSize=${stackSize}&exposure=${stackSize * 20}`, {
      method: 'PUT',
      headers: { 'Content-Type': 'image/jpeg' },
      body: new Uint8Array(jpeg),
    });
    expect(res.status).toBeLessThan(300);
    const data = (await (await fetch(`${suite.server.baseUrl}${path.replace(/api\/image$/, 'data.json')}`)).json()) as { VERSION: number };
    return data.VERSION;
  }

  it('with no live scope: a calm waiting screen; a bad ?every= falls back to 20 s with a note in the console', async () => {
    const { page, console } = await open('/wall?every=2');
    await page.waitForFunction(() => document.documentElement.lang === 'en' && document.getElementById('waiting')?.textContent?.includes('Waiting for the telescopes'));
    expect(await page.isVisible('#waiting')).toBe(true);
    expect((await wall(page)).every).toBe(20);
    expect(console.filter((line) => line.includes('every must be a number of seconds from 5 to 600, got "2"'))).toHaveLength(1);

    const valid = await open('/wall?every=7');
    expect((await wall(valid.page)).every).toBe(7);
    expect(valid.console.filter((line) => line.includes('every must be'))).toEqual([]);
  });

  it('swaps in the newest image of the scope on screen without a blank frame: a fully opaque, decoded image at every animation frame', async () => {
    const first = await publish('/api/image', 10, { r: 200, g: 40, b: 40 });
    const { page } = await open('/wall');
    await page.waitForFunction((v) => (window as unknown as { stackcastWall: WallHook }).stackcastWall.version === v, first);
    // The first image has faded in from the waiting screen (a pending animation is listed too).
    await page.waitForFunction(() => document.querySelector('.layer.front') !== null && document.getAnimations().length === 0);

    // At every frame, from now on: is some layer at opacity 1 showing a complete, decoded image?
    await page.evaluate(() => {
      const w = window as unknown as { __frames: Frame[]; __recording: boolean };
      w.__frames = [];
      w.__recording = true;
      const step = (): void => {
        if (!w.__recording) {
          return;
        }
        const stageShown = !document.getElementById('stage')!.hidden;
        const whole = [...document.querySelectorAll<HTMLImageElement>('.layer')].find(
          (img) => stageShown && img.complete && img.naturalWidth > 0 && getComputedStyle(img).opacity === '1',
        );
        w.__frames.push({ whole: whole !== undefined, src: whole?.src ?? '' });
        requestAnimationFrame(step);
      };
      requestAnimationFrame(step);
    });

    const second = await publish('/api/image', 11, { r: 40, g: 40, b: 200 });
    await page.waitForFunction((v) => (window as unknown as { stackcastWall: WallHook }).stackcastWall.version === v, second);
    // The fade is over once the old layer is put away.
    await expect.poll(async () => (await page.$$('.layer.behind')).length, { timeout: 5000 }).toBe(0);
    const frames = await page.evaluate(() => {
      const w = window as unknown as { __frames: Frame[]; __recording: boolean };
      w.__recording = false;
      return w.__frames;
    });
    expect(frames.length).toBeGreaterThan(10);
    expect(frames.filter((f) => !f.whole)).toEqual([]);
    // The old image until the swap, then the new one: never anything else.
    const sources = [...new Set(frames.map((f) => new URL(f.src).pathname))];
    expect(sources).toEqual([`/h/${first}.jpg`, `/h/${second}.jpg`]);
    expect(await page.textContent('#caption-stack')).toBe('11');
  });

  it('a scope with no new image for 10 minutes leaves the rotation (the waiting screen), and comes back when it publishes again', async () => {
    const { page } = await open('/wall', (p) => p.clock.install());
    await page.waitForFunction(() => (window as unknown as { stackcastWall: WallHook }).stackcastWall.scope === 'main');
    await page.clock.fastForward('10:30');
    await page.waitForFunction(() => !document.getElementById('waiting')!.hidden && document.getElementById('stage')!.hidden);
    expect((await wall(page)).scope).toBeNull();

    // The page's clock back to the server's, then a new image: main is on screen again.
    await page.clock.setSystemTime(Date.now());
    const version = await publish('/api/image', 12, { r: 40, g: 160, b: 40 });
    await page.waitForFunction((v) => (window as unknown as { stackcastWall: WallHook }).stackcastWall.version === v, version);
    expect(await page.isVisible('#waiting')).toBe(false);
  });
  it('shows the live scopes in turn with ?every=5, each with its own newest image and captions', async () => {
    const alpha = await publish('/s/alpha/api/image', 21, { r: 220, g: 200, b: 40 });
    const beta = await publish('/s/beta/api/image', 31, { r: 40, g: 200, b: 220 });
    const { page } = await open('/wall?every=5');
    // Each scope put on screen, in order, with what its caption and front layer said then.
    await page.evaluate(() => {
      const w = window as unknown as { __turns: Array<{ scope: string | null; src: string; stack: string | null }> };
      w.__turns = [];
      let last: string | null = null;
      const step = (): void => {
        const scope = (window as unknown as { stackcastWall: WallHook }).stackcastWall.scope;
        if (scope !== last) {
          last = scope;
          const front = document.querySelector<HTMLImageElement>('.layer.front');
          w.__turns.push({ scope, src: front ? new URL(front.src).pathname : '', stack: document.getElementById('caption-stack')!.textContent });
        }
        requestAnimationFrame(step);
      };
      requestAnimationFrame(step);
    });
    await page.waitForFunction(() => (window as unknown as { __turns: unknown[] }).__turns.length >= 4, undefined, { timeout: 40_000 });
    const turns = await page.evaluate(() => (window as unknown as { __turns: Array<{ scope: string | null; src: string; stack: string | null }> }).__turns);
    const scopes = turns.map((t) => t.scope);
    // main, alpha and beta are live (main published above): each turn is the next one in the list's order.
    const order = ['main', 'alpha', 'beta'];
    for (let i = 1; i < scopes.length; i++) {
      expect(order.indexOf(scopes[i]!)).toBe((order.indexOf(scopes[i - 1]!) + 1) % order.length);
    }
    expect(turns).toContainEqual({ scope: 'alpha', src: `/s/alpha/h/${alpha}.jpg`, stack: '21' });
    expect(turns).toContainEqual({ scope: 'beta', src: `/s/beta/h/${beta}.jpg`, stack: '31' });
    expect((await wall(page)).every).toBe(5);
  });
});
