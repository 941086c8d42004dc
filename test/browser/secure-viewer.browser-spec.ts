/// <reference lib="dom" />
import { createHash, X509Certificate } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { makeTestCertificate, type TestCertificate } from '../helpers/tls-cert.js';
import { launchBrowser } from './browser.js';

interface SecureHook {
  secure: boolean;
  wakeLock: { supported: boolean; requests: number; held: boolean; error: string | null };
  serviceWorker: { state: string; error: string | null; scope?: string };
}

declare global {
  interface Window {
    stackcastSecure: SecureHook;
    stackcastSession: { id: string | null; viewers: number | null; noticesShown: number };
  }
}

/** base64 SHA-256 of the certificate's public key, the form Chromium's SPKI allow-list takes. */
function spkiHash(cert: string): string {
  const der = new X509Certificate(cert).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('base64');
}

async function notice(server: TestServer, text: string, ca?: string): Promise<number> {
  const request = server.baseUrl.startsWith('https') ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(`${server.baseUrl}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, ca }, (res: IncomingMessage) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(JSON.stringify({ text }));
  });
}

describe('the viewer over HTTPS in Chromium: wss, wake lock, service worker, notices', () => {
  let pair: TestCertificate;
  let secureServer: TestServer;
  let plainServer: TestServer;
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    pair = await makeTestCertificate();
    [secureServer, plainServer] = await Promise.all([startTestServer({}, { https: pair }), startTestServer()]);
    // The test certificate is trusted by its key, so the origin is secure without a click-through.
    browser = await launchBrowser([`--ignore-certificate-errors-spki-list=${spkiHash(pair.cert)}`]);
  });

  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((c) => c.close()));
  });

  afterAll(async () => {
    await browser?.close();
    await secureServer?.close();
    await plainServer?.close();
  });

  async function open(baseUrl: string): Promise<{ page: Page; sockets: string[]; errors: string[] }> {
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 900, height: 700 } });
    contexts.push(context);
    const page = await context.newPage();
    const sockets: string[] = [];
    const errors: string[] = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    page.on('pageerror', (e) => errors.push(e.message));
    if (baseUrl.startsWith('https')) {
      // Headless Chromium denies the screen wake lock unless the permission is granted.
      const cdp = await context.newCDPSession(page);
      await cdp.send('Browser.grantPermissions', { origin: baseUrl, permissions: ['wakeLockScreen'] });
    }
    await page.goto(`${baseUrl}/`);
    await page.waitForFunction(() => window.stackcast?.state === 'live' && window.stackcastSession?.id !== null, undefined, { timeout: 15_000 });
    return { page, sockets, errors };
  }

  it('connects with wss://, holds the wake lock, registers the service worker and shows a notice', async () => {
    const { page, sockets, errors } = await open(secureServer.baseUrl);
    expect(sockets).toEqual([`${secureServer.wsUrl}`]);
    expect(sockets[0]).toMatch(/^wss:\/\//);

    await page.waitForFunction(() => window.stackcastSecure.wakeLock.held || window.stackcastSecure.wakeLock.error !== null);
    const wake = await page.evaluate(() => window.stackcastSecure.wakeLock);
    expect(wake).toMatchObject({ supported: true, requests: 1, held: true, error: null });

    await page.waitForFunction(() => window.stackcastSecure.serviceWorker.state !== 'pending');
    expect(await page.evaluate(() => window.stackcastSecure.serviceWorker)).toMatchObject({ state: 'registered', error: null });
    // Once active, the worker has the shell and OpenSeadragon, and never the live files.
    await page.evaluate(async () => {
      await navigator.serviceWorker.ready;
      await fetch('web_image.jpg');
      await fetch('data.json');
    });
    const cached = await page.evaluate(async () => {
      const cache = await caches.open('stackcast-shell-v1');
      return (await cache.keys()).map((r) => new URL(r.url).pathname).sort();
    });
    expect(cached).toContain('/openseadragon.min.js');
    expect(cached).toContain('/index.html');
    expect(cached).toContain('/icons/app-192.png');
    expect(cached.some((p) => p.includes('web_image') || p.includes('data.json') || p.startsWith('/v/') || p.startsWith('/ws'))).toBe(false);
    const manifest = await page.evaluate(async () => {
      const link = document.querySelector<HTMLLinkElement>('link[rel="manifest"]');
      const res = await fetch(link!.href);
      return { type: res.headers.get('content-type'), body: (await res.json()) as { icons: { src: string }[] } };
    });
    expect(manifest.type).toContain('application/manifest+json');
    expect(manifest.body.icons.map((i) => i.src)).toEqual(['icons/app-192.png', 'icons/app-512.png']);

    expect(await page.textContent('#viewer-count')).toBe('1 watching');
    expect(await notice(secureServer, 'Switching to M42 in 5 minutes', pair.cert)).toBe(200);
    const card = page.locator('#notices .notice');
    await card.waitFor({ state: 'visible' });
    expect(await card.textContent()).toContain('Switching to M42 in 5 minutes');
    // The card does not cover the bar, and is dismissed with its button.
    const box = (await card.boundingBox())!;
    const bar = (await page.locator('#bar').boundingBox())!;
    expect(box.y + box.height).toBeLessThan(bar.y);
    await page.click('#notices .notice-close');
    expect(await page.locator('#notices .notice').count()).toBe(0);
    expect(errors).toEqual([]);
  });

  it('a notice stays readable in night mode', async () => {
    const { page } = await open(secureServer.baseUrl);
    await page.click('#night-toggle');
    expect(await notice(secureServer, 'Dew on the corrector, wiping it', pair.cert)).toBe(200);
    const card = page.locator('#notices .notice');
    await card.waitFor({ state: 'visible' });
    const colours = await page.evaluate(() => {
      const p = document.querySelector('#notices .notice p')!;
      return { text: getComputedStyle(p).color, filter: getComputedStyle(document.body).filter };
    });
    expect(colours.filter).toContain('night-red');
    // Light grey text on the dark panel: red on black once the filter applies.
    const [r, g, b] = colours.text.match(/\d+/g)!.map(Number);
    expect(Math.min(r, g, b)).toBeGreaterThan(120);
  });

  it('on plain HTTP: ws://, no wake lock, no service worker, no manifest, and notices still work', async () => {
    const { page, sockets, errors } = await open(plainServer.baseUrl);
    expect(sockets[0]).toMatch(/^ws:\/\//);
    const secure = await page.evaluate(async () => ({
      hook: { secure: window.stackcastSecure.secure, wakeLock: window.stackcastSecure.wakeLock, serviceWorker: window.stackcastSecure.serviceWorker },
      manifest: document.querySelector('link[rel="manifest"]') !== null,
      registrations: navigator.serviceWorker ? (await navigator.serviceWorker.getRegistrations()).length : 0,
    }));
    expect(secure.hook).toMatchObject({ secure: false, wakeLock: { requests: 0 }, serviceWorker: { state: 'skipped' } });
    expect(secure.manifest).toBe(false);
    expect(secure.registrations).toBe(0);
    expect(await notice(plainServer, 'Clouds coming in')).toBe(200);
    await page.locator('#notices .notice').waitFor({ state: 'visible' });
    expect(await page.evaluate(() => window.stackcastSession.noticesShown)).toBe(1);
    expect(errors).toEqual([]);
  });
});
