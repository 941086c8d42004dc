/// <reference lib="dom" />
// The functions passed to page.evaluate run in the page, hence the DOM lib.
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { makeJpeg } from '../helpers/images.js';
import { axeAudit } from './axe.js';
import { sharedServerAndBrowser } from './browser.js';

interface LobbyHook {
  state: string;
  lists: number;
  cards: number;
}
interface WallHook {
  scope: string | null;
  version: number;
  swaps: number;
}

describe('the lobby and the wall are usable by keyboard and screen reader (Chromium, axe-core)', () => {
  const suite = sharedServerAndBrowser();

  // bypassCSP: axe is injected as a script tag, which stackcast's CSP would refuse.
  async function open(path: string, options: { reducedMotion?: 'reduce' | 'no-preference' } = {}): Promise<Page> {
    const context = await suite.browser.newContext({ viewport: { width: 1280, height: 800 }, bypassCSP: true, reducedMotion: options.reducedMotion });
    suite.contexts.push(context);
    const page = await context.newPage();
    await page.goto(`${suite.server.baseUrl}${path}`);
    return page;
  }

  const lobby = (page: Page): Promise<LobbyHook> =>
    page.evaluate(() => {
      const l = (window as unknown as { stackcastLobby: LobbyHook }).stackcastLobby;
      return { state: l.state, lists: l.lists, cards: l.cards };
    });

  async function publish(stackSize: number, object?: string): Promise<void> {
    const jpeg = await makeJpeg({ width: 640, height: 400, color: { r: 60 + stackSize * 8, g: 90, b: 140 } });
    const query = `stackSize=${stackSize}&exposure=${stackSize * 30}${object ? `&object=${encodeURIComponent(object)}` : ''}`;
    const res = await fetch(`${suite.server.baseUrl}/api/image?${query}`, { method: 'PUT', headers: { 'Content-Type': 'image/jpeg' }, body: new Uint8Array(jpeg) });
    expect(res.status).toBeLessThan(300);
  }

  it('before any image: the lobby says so in a sentence and the wall waits for the telescopes, axe finds nothing serious', async () => {
    const page = await open('/scopes');
    await page.waitForFunction(() => (window as unknown as { stackcastLobby: LobbyHook }).stackcastLobby.lists > 0);
    expect(await page.isVisible('#lobby-empty')).toBe(true);
    expect(await page.textContent('#lobby-empty')).toMatch(/No telescope is sharing an image yet/);
    expect(await axeAudit(page)).toEqual([]);

    const wall = await open('/wall');
    await wall.waitForFunction(() => document.documentElement.lang === 'en' && document.title.includes('big screen'));
    expect(await wall.isVisible('#waiting')).toBe(true);
    expect(await wall.isVisible('#stage')).toBe(false);
    expect(await axeAudit(wall)).toEqual([]);
  });

  it('axe finds no serious or critical violation on the lobby with a card and on the wall showing an image', async () => {
    await publish(5, 'M 42');
    const page = await open('/scopes');
    await page.waitForSelector('li[data-scope="main"] .thumb:not([hidden])');
    await page.waitForFunction(() => document.querySelector('li[data-scope="main"] .card-object')?.textContent === 'M42 · Orion Nebula');
    expect(await lobby(page)).toMatchObject({ state: 'live', cards: 1 });
    expect(await axeAudit(page)).toEqual([]);

    const wall = await open('/wall');
    await wall.waitForFunction(() => (window as unknown as { stackcastWall: WallHook }).stackcastWall.scope === 'main');
    expect(await wall.textContent('#caption-stack')).toBe('5');
    expect(await axeAudit(wall)).toEqual([]);
  });

  it('each card is reached with Tab, shows a visible focus ring, and opens its viewer with Enter', async () => {
    await publish(6);
    const page = await open('/scopes');
    await page.waitForSelector('li[data-scope="main"] a');
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => {
      const el = document.activeElement as HTMLElement;
      const style = getComputedStyle(el);
      return { card: el.closest('li')?.dataset.scope, visible: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2 };
    });
    expect(focused).toEqual({ card: 'main', visible: true });
    await page.keyboard.press('Enter');
    await page.waitForURL(`${suite.server.baseUrl}/`);
    await page.waitForFunction(() => window.stackcast?.state === 'live' && window.stackcast.version > 0);
  });

  it('the lobby announces politely and only what changes; the wall has no control and no cursor', async () => {
    const page = await open('/scopes');
    await page.waitForSelector('li[data-scope="main"]');
    expect(await page.getAttribute('#lobby-status', 'aria-live')).toBe('polite');
    expect(await page.getAttribute('#lobby-status', 'role')).toBe('status');
    // The ages tick every second outside the live region: across two ticks nothing is written into it.
    await page.evaluate(() => {
      const w = window as unknown as { __writes: number };
      w.__writes = 0;
      new MutationObserver((records) => (w.__writes += records.length)).observe(document.getElementById('lobby-status')!, { childList: true, subtree: true, characterData: true });
    });
    for (let i = 0; i < 2; i++) {
      const age = await page.textContent('li[data-scope="main"] .age');
      await page.waitForFunction((a) => document.querySelector('li[data-scope="main"] .age')?.textContent !== a, age);
    }
    expect(await page.evaluate(() => (window as unknown as { __writes: number }).__writes)).toBe(0);

    const wall = await open('/wall');
    await wall.waitForFunction(() => (window as unknown as { stackcastWall: WallHook }).stackcastWall.scope === 'main');
    const controls = await wall.evaluate(() => ({
      focusable: document.querySelectorAll('a[href], button, input, select, textarea, [tabindex], summary').length,
      cursor: getComputedStyle(document.body).cursor,
      caption: document.getElementById('caption')?.getAttribute('aria-live'),
    }));
    expect(controls).toEqual({ focusable: 0, cursor: 'none', caption: 'polite' });
  });

  it('prefers-reduced-motion: the wall swaps without a fade and the lobby without a transition', async () => {
    const motion = async (reducedMotion: 'reduce' | 'no-preference'): Promise<{ fade: string; thumb: string }> => {
      const wall = await open('/wall', { reducedMotion });
      await wall.waitForFunction(() => (window as unknown as { stackcastWall: WallHook }).stackcastWall.swaps > 0);
      const fade = await wall.evaluate(() => getComputedStyle(document.querySelector('.layer.front')!).animationName);
      const page = await open('/scopes', { reducedMotion });
      await page.waitForSelector('li[data-scope="main"] .thumb');
      const thumb = await page.evaluate(() => getComputedStyle(document.querySelector('.thumb')!).transitionDuration);
      return { fade, thumb };
    };
    expect(await motion('reduce')).toEqual({ fade: 'none', thumb: '0s' });
    expect(await motion('no-preference')).toEqual({ fade: 'fade-in', thumb: '0.3s' });
  });
  it('axe finds nothing serious on the viewer with its switcher open (two scopes)', async () => {
    const jpeg = await makeJpeg({ width: 640, height: 400, color: { r: 90, g: 60, b: 160 } });
    const res = await fetch(`${suite.server.baseUrl}/s/alpha/api/image?stackSize=3`, { method: 'PUT', headers: { 'Content-Type': 'image/jpeg' }, body: new Uint8Array(jpeg) });
    expect(res.status).toBeLessThan(300);
    await publish(7);
    const page = await open('/');
    await page.waitForFunction(() => window.stackcast?.state === 'live' && window.stackcast.version > 0);
    await page.waitForSelector('#switcher:not([hidden])');
    await page.click('#switcher summary');
    await page.waitForSelector('#switcher details[open] a');
    expect(await axeAudit(page)).toEqual([]);
  });
});
