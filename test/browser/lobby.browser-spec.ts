/// <reference lib="dom" />
// The functions passed to page.evaluate run in the page, hence the DOM lib.
import { readFileSync } from 'node:fs';
import type { BrowserContextOptions, Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { makeJpeg } from '../helpers/images.js';
import { sharedServerAndBrowser } from './browser.js';

const GERMAN = JSON.parse(readFileSync(new URL('../../src/modules/web-assets/viewer/i18n-de.json', import.meta.url), 'utf8')) as Record<string, string>;

interface LobbyHook {
  state: string;
  lists: number;
  connects: number;
  cards: number;
}

describe('the lobby: every telescope of the night, live (Chromium)', () => {
  const suite = sharedServerAndBrowser();

  async function open(path: string, options: BrowserContextOptions = {}): Promise<{ page: Page; errors: string[] }> {
    const context = await suite.browser.newContext({ viewport: { width: 390, height: 844 }, ...options });
    suite.contexts.push(context);
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') {
        errors.push(message.text());
      }
    });
    await page.goto(`${suite.server.baseUrl}${path}`);
    return { page, errors };
  }

  const lobby = (page: Page): Promise<LobbyHook> =>
    page.evaluate(() => {
      const l = (window as unknown as { stackcastLobby: LobbyHook }).stackcastLobby;
      return { state: l.state, lists: l.lists, connects: l.connects, cards: l.cards };
    });

  /** Publishes into `path` (`/api/image` or `/s/<id>/api/image`). */
  async function publish(path: string, stackSize: number): Promise<void> {
    const jpeg = await makeJpeg({ width: 900, height: 600, color: { r: 40 + stackSize * 5, g: 80, b: 120 } });
    const res = await fetch(`${suite.server.baseUrl}${path}?stackSize=${stackSize}&exposure=${stackSize * 60}`, {
      method: 'PUT',
      headers: { 'Content-Type': 'image/jpeg' },
      body: new Uint8Array(jpeg),
    });
    expect(res.status, await res.clone().text()).toBeLessThan(300);
  }

  it('with one scope the viewer shows no switcher', async () => {
    await publish('/api/image', 4);
    const { page, errors } = await open('/');
    await page.waitForFunction(() => window.stackcast?.state === 'live' && window.stackcast.version > 0);
    // The switcher asks /api/scopes once the language is known: wait for that answer.
    await page.waitForSelector('#switcher[data-checked]', { state: 'attached' });
    expect(await page.isHidden('#switcher')).toBe(true);
    expect(errors).toEqual([]);
  });

  it('shows a card for a new scope without a reload, then its stack as it grows', async () => {
    const { page, errors } = await open('/scopes');
    await page.waitForSelector('li[data-scope="main"]');
    await page.evaluate(() => ((window as unknown as { __sameDocument: boolean }).__sameDocument = true));

    await publish('/s/alpha/api/image', 7);
    const card = page.locator('li[data-scope="alpha"]');
    await card.waitFor();
    await page.waitForFunction(() => document.querySelector('li[data-scope="alpha"] .stack')?.textContent === '7');
    expect(await card.locator('.card-title').textContent()).toBe('alpha');
    expect(await card.locator('.exposure').textContent()).toBe('0:07:00');
    // Its thumbnail: a whole decoded image of at most 256 px.
    await page.waitForFunction(() => {
      const img = document.querySelector<HTMLImageElement>('li[data-scope="alpha"] .thumb');
      return !!img && !img.hidden && img.complete && img.naturalWidth > 0;
    });
    const thumb = await card.locator('.thumb').evaluate((img: HTMLImageElement) => ({ w: img.naturalWidth, h: img.naturalHeight, src: new URL(img.src).pathname }));
    expect(Math.max(thumb.w, thumb.h)).toBeLessThanOrEqual(256);
    expect(thumb.src).toMatch(/^\/s\/alpha\/v\/1\//);

    await publish('/s/alpha/api/image', 8);
    await page.waitForFunction(() => document.querySelector('li[data-scope="alpha"] .stack')?.textContent === '8');
    await page.waitForFunction(() => new URL(document.querySelector<HTMLImageElement>('li[data-scope="alpha"] .thumb')!.src).pathname.startsWith('/s/alpha/v/2/'));

    // Title and object set by the control route: the catalogue's common name is shown.
    const res = await fetch(`${suite.server.baseUrl}/s/alpha/api/scope`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'Dobson 12"', object: 'M 42' }) });
    expect(res.status).toBeLessThan(300);
    await page.waitForFunction(() => document.querySelector('li[data-scope="alpha"] .card-title')?.textContent === 'Dobson 12"');
    await page.waitForFunction(() => document.querySelector('li[data-scope="alpha"] .card-object')?.textContent === 'M42 · Orion Nebula');

    expect(await page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument)).toBe(true);
    expect(await lobby(page)).toMatchObject({ state: 'live', connects: 1, cards: 2 });
    expect(await page.textContent('#lobby-status')).toContain('alpha');
    expect(errors).toEqual([]);
  });

  it('a tap on a card opens that scope\'s viewer at /s/<id>/, which offers the lobby and the other scope', async () => {
    const { page, errors } = await open('/scopes', { isMobile: true, hasTouch: true, deviceScaleFactor: 3 });
    await page.waitForSelector('li[data-scope="alpha"] a');
    await page.tap('li[data-scope="alpha"] a');
    await page.waitForURL(`${suite.server.baseUrl}/s/alpha/`);
    await page.waitForFunction(() => window.stackcast?.state === 'live' && window.stackcast.version === 2);
    expect(await page.textContent('#stack-size')).toBe('8');

    // The switcher, by keyboard: its button opens the list, whose links are the lobby and main.
    await page.waitForSelector('#switcher:not([hidden])');
    await page.focus('#switcher summary');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#switcher details[open]');
    const links = await page.$$eval('#switcher-list a', (as) => as.map((a) => [a.textContent, new URL((a as HTMLAnchorElement).href).pathname]));
    expect(links).toEqual([
      ['All telescopes', '/scopes'],
      ['main', '/'],
    ]);
    await page.keyboard.press('Tab');
    const focus = await page.evaluate(() => {
      const el = document.activeElement as HTMLElement;
      const style = getComputedStyle(el);
      return { text: el.textContent, visible: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2 };
    });
    expect(focus).toEqual({ text: 'All telescopes', visible: true });
    await page.keyboard.press('Enter');
    await page.waitForURL(`${suite.server.baseUrl}/scopes`);
    await page.waitForSelector('li[data-scope="main"] a');
    // main's card opens the root.
    await page.tap('li[data-scope="main"] a');
    await page.waitForURL(`${suite.server.baseUrl}/`);
    await page.waitForSelector('#switcher:not([hidden])');
    expect(errors).toEqual([]);
  });

  it('speaks the visitor\'s language: ?lang=, <html lang>, numbers and "… ago" in the locale', async () => {
    await publish('/s/alpha/api/image', 12345);
    const { page } = await open('/scopes?lang=fr');
    await page.waitForFunction(() => document.querySelector('li[data-scope="alpha"] .stack')?.textContent !== '8');
    const shown = await page.evaluate(() => ({
      lang: document.documentElement.lang,
      title: document.title,
      heading: document.querySelector('h1')?.textContent,
      stackLabel: document.querySelector('li[data-scope="alpha"] dt')?.textContent,
      stack: document.querySelector('li[data-scope="alpha"] .stack')?.textContent,
      expected: new Intl.NumberFormat('fr').format(12345),
      age: document.querySelector('li[data-scope="alpha"] .age')?.textContent,
    }));
    expect(shown).toMatchObject({ lang: 'fr', title: 'Télescopes ce soir', heading: 'Télescopes ce soir', stackLabel: 'Poses' });
    expect(shown.stack).toBe(shown.expected);
    expect(shown.age).toMatch(/maintenant|il y a/);

    const wall = await open('/wall?lang=de&every=600');
    await wall.page.waitForFunction(() => document.documentElement.lang === 'de');
    await wall.page.waitForFunction(() => (window as unknown as { stackcastWall: { scope: string | null } }).stackcastWall.scope !== null);
    expect(await wall.page.textContent('.caption-metrics dt')).toBe(GERMAN['metric.stack']);
    expect(await wall.page.evaluate(() => document.title)).toBe('Teleskope heute Nacht: die große Leinwand');
  });
});
