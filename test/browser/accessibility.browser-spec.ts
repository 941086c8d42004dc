/// <reference lib="dom" />
// The functions passed to page.evaluate run in the page, hence the DOM lib.
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { makeJpeg } from '../helpers/images.js';
import { axeAudit as audit } from './axe.js';
import { sharedServerAndBrowser } from './browser.js';

/** WCAG relative luminance of an sRGB colour (0..255 channels). */
function luminance([r, g, b]: number[]): number {
  const lin = (c: number): number => {
    const s = c / 255;
    return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

/** Night mode's #night-red matrix: the colour's brightness, in red only. */
function nightRed([r, g, b]: number[]): number[] {
  return [Math.min(255, 0.2126 * r + 0.7152 * g + 0.0722 * b), 0, 0];
}

function contrast(a: number[], b: number[]): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

describe('the viewer is usable by keyboard and screen reader (Chromium, axe-core)', () => {
  const suite = sharedServerAndBrowser();

  // bypassCSP: axe is injected as a script tag, which the viewer's CSP would refuse.
  async function open(options: { reducedMotion?: 'reduce' | 'no-preference' } = {}): Promise<Page> {
    const context = await suite.browser.newContext({ viewport: { width: 1280, height: 800 }, bypassCSP: true, reducedMotion: options.reducedMotion });
    suite.contexts.push(context);
    const page = await context.newPage();
    await page.goto(`${suite.server.baseUrl}/`);
    await page.waitForFunction(() => window.stackcast?.state === 'live' && window.stackcast.imageSeq > 0);
    return page;
  }

  async function notice(text: string): Promise<void> {
    const res = await fetch(`${suite.server.baseUrl}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text }) });
    expect(res.status).toBeLessThan(300);
  }

  it('axe finds no serious or critical violation: the page with a notice, the share dialog, night mode', async () => {
    const page = await open();
    await notice('Switching to M42 in 5 minutes');
    await page.waitForSelector('#notices .notice');
    expect(await audit(page)).toEqual([]);

    await page.click('#share-button');
    await page.waitForSelector('#share-dialog[open]');
    expect(await audit(page)).toEqual([]);
    await page.keyboard.press('Escape');

    await page.click('#night-toggle');
    await page.waitForFunction(() => document.documentElement.classList.contains('night'));
    expect(await audit(page, ['color-contrast'])).toEqual([]);
  });

  it('night mode keeps text readable: 4.5:1 after the red filter, on the bar over a white image', async () => {
    const page = await open();
    await page.click('#night-toggle');
    await notice('Dew heaters on');
    await page.waitForSelector('#notices .notice');
    // Each text's colour and its panel's (rgba) as computed, for the filter's arithmetic here.
    const samples = await page.evaluate(() => {
      const rgba = (css: string): number[] => (css.match(/[\d.]+/g) ?? []).map(Number);
      return ['#conn-text', '.metrics dt', '.metrics dd', '#night-toggle', '#notices .notice p', '#notices .notice-close'].map((selector) => {
        const el = document.querySelector(selector)!;
        const panel = el.closest('.bar, .notice')!;
        return { selector, text: rgba(getComputedStyle(el).color), panel: rgba(getComputedStyle(panel).backgroundColor) };
      });
    });
    const low = samples
      .map(({ selector, text, panel }) => {
        // The panel composited over the worst case for light text: a white image.
        const alpha = panel[3] ?? 1;
        const background = panel.slice(0, 3).map((c) => c * alpha + 255 * (1 - alpha));
        return { selector, ratio: contrast(nightRed(text), nightRed(background)) };
      })
      .filter(({ ratio }) => ratio < 4.5);
    expect(low).toEqual([]);
  });

  it('every control is reached with Tab, shows a visible focus ring, and works with Enter and Space', async () => {
    const page = await open();
    await notice('Meridian flip soon');
    await page.waitForSelector('#notices .notice');
    const seen: Array<{ name: string; outline: string }> = [];
    for (let i = 0; i < 12; i++) {
      await page.keyboard.press('Tab');
      const focused = await page.evaluate(() => {
        const el = document.activeElement as HTMLElement | null;
        if (!el || el === document.body) {
          return null;
        }
        const style = getComputedStyle(el);
        return {
          name: el.getAttribute('aria-label') ?? el.id ?? el.className,
          outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2 ? 'visible' : `${style.outlineStyle} ${style.outlineWidth}`,
        };
      });
      if (focused && !seen.some((s) => s.name === focused.name)) {
        seen.push(focused);
      }
    }
    const names = seen.map((s) => s.name);
    for (const control of ['Zoom in', 'Zoom out', 'Go home', 'Toggle full page', 'night-toggle', 'share-button', 'Dismiss this message']) {
      expect(names).toContain(control);
    }
    expect(seen.filter((s) => s.outline !== 'visible')).toEqual([]);

    // Enter and Space on the night toggle, Space on OpenSeadragon's zoom button, Enter on Share.
    await page.focus('#night-toggle');
    await page.keyboard.press('Enter');
    expect(await page.evaluate(() => window.stackcast.nightMode)).toBe(true);
    await page.keyboard.press('Space');
    expect(await page.evaluate(() => window.stackcast.nightMode)).toBe(false);

    const home = await page.evaluate(() => window.stackcast.viewer.viewport.getHomeZoom());
    await page.focus('#viewer [aria-label="Zoom in"]');
    await page.keyboard.press('Space');
    await page.waitForFunction((h) => window.stackcast.viewer.viewport.getZoom() > h * 1.2, home);
    await page.focus('#viewer [aria-label="Go home"]');
    await page.keyboard.press('Enter');
    await page.waitForFunction((h) => Math.abs(window.stackcast.viewer.viewport.getZoom() - h) < h * 0.01, home);

    await page.focus('#share-button');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#share-dialog[open]');
    await page.keyboard.press('Escape');
    await page.waitForSelector('#share-dialog:not([open])', { state: 'attached' });
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('share-button');

    await page.focus('#notices .notice-close');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelectorAll('#notices .notice').length === 0);
  });

  it('the live status, the new image and the notices are polite live regions, written only when they change', async () => {
    const page = await open();
    const regions = await page.evaluate(() =>
      ['#conn-text', '#stack-live', '#notices'].map((s) => {
        const el = document.querySelector(s);
        return [s, el?.getAttribute('aria-live'), el?.getAttribute('role')];
      }),
    );
    expect(regions).toEqual([
      ['#conn-text', 'polite', 'status'],
      ['#stack-live', 'polite', null],
      ['#notices', 'polite', 'status'],
    ]);
    expect(await page.getAttribute('#stack-live', 'aria-atomic')).toBe('true');

    // A first image, so the bar ticks its age every second (before any, it says it waits).
    const first = await makeJpeg({ width: 320, height: 200, color: { r: 200, g: 120, b: 90 } });
    const put = await fetch(`${suite.server.baseUrl}/api/image?stackSize=11&exposure=550`, { method: 'PUT', headers: { 'Content-Type': 'image/jpeg' }, body: new Uint8Array(first) });
    expect(put.status).toBeLessThan(300);
    await page.waitForFunction(() => document.getElementById('stack-size')?.textContent === '11');

    // Count every write into the live regions from now on.
    await page.evaluate(() => {
      const w = window as unknown as { __writes: string[] };
      w.__writes = [];
      const observer = new MutationObserver((records) => records.forEach((r) => w.__writes.push((r.target as Element).id || (r.target.parentElement?.id ?? ''))));
      for (const s of ['#conn-text', '#stack-live', '#notices']) {
        observer.observe(document.querySelector(s)!, { childList: true, subtree: true, characterData: true });
      }
    });
    // The page re-renders every second ("Updated N s ago"): across two renders where nothing
    // else changed, nothing is written into the live regions.
    for (let i = 0; i < 2; i++) {
      const updated = await page.textContent('#updated');
      await page.waitForFunction((t) => document.getElementById('updated')?.textContent !== t, updated);
    }
    expect(await page.evaluate(() => (window as unknown as { __writes: string[] }).__writes)).toEqual([]);

    const body = await makeJpeg({ width: 320, height: 200, color: { r: 90, g: 120, b: 200 } });
    const res = await fetch(`${suite.server.baseUrl}/api/image?stackSize=12&exposure=600`, { method: 'PUT', headers: { 'Content-Type': 'image/jpeg' }, body: new Uint8Array(body) });
    expect(res.status).toBeLessThan(300);
    await page.waitForFunction(() => document.getElementById('stack-size')?.textContent === '12');
    expect(await page.textContent('#stack-live')).toBe('Stack12');

    await notice('Last image of the night');
    await page.waitForFunction(() => document.querySelector('#notices')?.textContent?.includes('Last image of the night'));
  });

  it('prefers-reduced-motion: no pulsing dot, no fades, zoom without animation', async () => {
    const reduced = await open({ reducedMotion: 'reduce' });
    const motion = (page: Page): Promise<{ dot: string; fade: string; animationTime: number }> =>
      page.evaluate(() => ({
        dot: getComputedStyle(document.querySelector('.dot')!).animationName,
        fade: getComputedStyle(document.querySelector('#viewer .openseadragon-canvas')!).transitionDuration,
        animationTime: (window.stackcast.viewer as unknown as { animationTime: number }).animationTime,
      }));
    // The dot pulses while connecting: shown through the state the stylesheet keys on.
    await reduced.evaluate(() => (document.getElementById('viewer')!.dataset.state = 'reconnecting'));
    expect(await motion(reduced)).toEqual({ dot: 'none', fade: '0s', animationTime: 0 });

    const normal = await open({ reducedMotion: 'no-preference' });
    await normal.evaluate(() => (document.getElementById('viewer')!.dataset.state = 'reconnecting'));
    expect(await motion(normal)).toEqual({ dot: 'pulse', fade: '0.4s', animationTime: 0.8 });
  });
});
