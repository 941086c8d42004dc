import { randomBytes } from 'node:crypto';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeJpeg, type Colour } from '../helpers/images.js';
import { spawnService, type SpawnedService } from '../helpers/spawn-service.js';
import { makeTempFolder } from '../helpers/temp-folder.js';
import { hook, imageAreaColour, close, launchBrowser, openViewer, waitForCanvasColour, waitForImageShown } from './browser.js';

// The built service (`npm run build`, which `npm run test:browser` runs first) as a real
// process, killed and started again on the same port and work folder.
describe('the viewer when the service process dies and comes back', () => {
  let browser: Browser;
  let work: { path: string; remove(): Promise<void> };
  let env: Record<string, string>;
  let service: SpawnedService | undefined;
  const contexts: BrowserContext[] = [];

  async function publish(colour: Colour, stackSize: number, exposure: number): Promise<void> {
    const body = await makeJpeg({ width: 960, height: 640, color: colour });
    const res = await fetch(`${service!.baseUrl}/api/image?stackSize=${stackSize}&exposure=${exposure}`, {
      method: 'PUT',
      headers: { 'Content-Type': 'image/jpeg', Authorization: `Bearer ${env.CONTROL_TOKEN}` },
      body: new Uint8Array(body),
    });
    expect(res.status).toBeLessThan(300);
  }

  /** The page shows what the (new) server has now: its web_image.jpg pixels and data.json. */
  async function expectCaughtUp(page: Page): Promise<void> {
    const current = Buffer.from(await (await fetch(`${service!.baseUrl}/web_image.jpg`)).arrayBuffer());
    const data = (await (await fetch(`${service!.baseUrl}/data.json`)).json()) as { STACK_SIZE: number; EXPO: string };
    await page.waitForFunction((n) => document.getElementById('stack-size')?.textContent === String(n), data.STACK_SIZE);
    await waitForImageShown(page, current);
    expect(await page.textContent('#exposure')).toBe(data.EXPO);
  }

  beforeAll(async () => {
    browser = await launchBrowser();
    work = await makeTempFolder();
    // A token of our own, so a developer's .env cannot change who may publish.
    env = { WORK_FOLDER: work.path, CONTROL_TOKEN: randomBytes(16).toString('hex') };
    service = await spawnService(env);
    // Restarts take the same port again, so the open page reconnects to it.
    env.PORT = String(service.port);
  });

  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((c) => c.close()));
  });

  afterAll(async () => {
    await browser?.close();
    await service?.kill('SIGKILL');
    await work?.remove();
  });

  it('SIGKILL, then started again: the page reconnects by itself and catches up, then follows new images', async () => {
    const { page, context, errors } = await openViewer(browser, service!.baseUrl);
    contexts.push(context);
    const before: Colour = { r: 200, g: 60, b: 160 };
    await publish(before, 7, 420);
    await waitForCanvasColour(page, before);
    await page.waitForFunction(() => window.stackcast.state === 'live' && document.getElementById('stack-size')?.textContent === '7');

    expect(await service!.kill('SIGKILL')).toBeNull();
    // No goodbye from a killed server: this is a lost connection, not a stop.
    await page.waitForFunction(() => window.stackcast.state === 'reconnecting');
    expect(await page.textContent('#conn-text')).toMatch(/^(offline, retry in \d+ s|reconnecting…)$/);
    expect(close((await imageAreaColour(page))!.colour, before)).toBe(true);

    service = await spawnService(env);

    // Backoff is at most 10 s (plus jitter).
    await page.waitForFunction(() => window.stackcast.state === 'live', undefined, { timeout: 20_000 });
    const state = await hook(page);
    expect(state.connects).toBe(2);
    expect(state.received.disconnect).toBe(0);
    // The new process started a new session (waiting image, STACK_SIZE 0): no message told the
    // page so, only the fetch on reconnect.
    await expectCaughtUp(page);
    expect((await hook(page)).received.new_image).toBe(1);

    const after: Colour = { r: 60, g: 200, b: 120 };
    await publish(after, 8, 480);
    await waitForCanvasColour(page, after);
    await page.waitForFunction(() => document.getElementById('stack-size')?.textContent === '8');
    expect(await page.textContent('#exposure')).toBe('0:08:00');
    expect(errors).toEqual([]);
  });

  it('SIGTERM: the page says "stream stopped", then comes back when the service is started again', async () => {
    const { page, context, errors } = await openViewer(browser, service!.baseUrl);
    contexts.push(context);
    await page.waitForFunction(() => window.stackcast?.state === 'live' && window.stackcast.imageSeq > 0);

    expect(await service!.kill('SIGTERM')).toBe(0);
    await page.waitForFunction(() => window.stackcast.state === 'stopped');
    expect(await page.isVisible('#stopped')).toBe(true);

    service = await spawnService(env);

    await page.waitForFunction(() => window.stackcast.state === 'live', undefined, { timeout: 25_000 });
    expect(await page.isVisible('#stopped')).toBe(false);
    await expectCaughtUp(page);
    expect(errors).toEqual([]);
  });
});
