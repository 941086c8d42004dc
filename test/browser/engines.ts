import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import puppeteer, { type Browser as PuppeteerBrowser, type KeyInput, type Page as PuppeteerPage } from 'puppeteer-core';
import type { Browser as PlaywrightBrowser, BrowserContext, Page as PlaywrightPage } from 'playwright-core';
import { launchBrowser } from './browser.js';

/**
 * A thin cross-engine driver: what the engine scenarios need and nothing more, so one spec
 * runs the same steps in Chromium (Playwright), Firefox ESR (Puppeteer over WebDriver BiDi)
 * and WebKitGTK (classic W3C WebDriver). Every browser is Debian's; nothing is downloaded.
 */
export type EngineName = 'chromium' | 'firefox' | 'webkit';

export const FIREFOX = '/usr/bin/firefox-esr';
export const WEBKIT_DRIVER = '/usr/bin/WebKitWebDriver';
export const MINIBROWSER = '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';
export const XVFB = '/usr/bin/Xvfb';

/** Keys the scenarios press. */
export type Key = 'Tab' | 'Enter' | ' ' | '=' | '-' | 'Escape';

/** A function that runs in the page: it must be self-contained (it is sent as its source). */
type InPage<A extends unknown[], R> = (...args: A) => R;

export interface EnginePage {
  goto(url: string): Promise<void>;
  /** Runs `fn(...args)` in the page and returns its (JSON) result. */
  evaluate<A extends unknown[], R>(fn: InPage<A, R>, ...args: A): Promise<Awaited<R>>;
  /** Resolves once `fn(...args)` is truthy in the page; rejects after `timeout` ms with `what`. */
  waitFor<A extends unknown[]>(what: string, fn: InPage<A, unknown>, args: A, timeout?: number): Promise<void>;
  /** Presses and releases `key` on the focused element. */
  press(key: Key): Promise<void>;
  /** A real pointer click at the middle of the first element matching `selector`. */
  click(selector: string): Promise<void>;
  close(): Promise<void>;
}

export interface Engine {
  readonly name: EngineName;
  newPage(): Promise<EnginePage>;
  close(): Promise<void>;
}

/** Polls `check` until it is truthy: the engines' own wait functions differ, this does not. */
async function poll(what: string, check: () => Promise<unknown>, timeout: number): Promise<void> {
  const deadline = Date.now() + timeout;
  let last: Error | undefined;
  for (;;) {
    try {
      if (await check()) {
        return;
      }
    } catch (error) {
      // A navigation or a reload may be under way: keep polling until the deadline.
      last = error instanceof Error ? error : new Error(String(error));
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${last ? ` (last error: ${last.message})` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

// ---------------------------------------------------------------- Chromium (Playwright)

class ChromiumPage implements EnginePage {
  constructor(
    private readonly context: BrowserContext,
    private readonly page: PlaywrightPage,
  ) {}

  async goto(url: string): Promise<void> {
    await this.page.goto(url);
  }

  evaluate<A extends unknown[], R>(fn: InPage<A, R>, ...args: A): Promise<Awaited<R>> {
    // An expression evaluated by the protocol, which the page's CSP (no eval) does not govern.
    return this.page.evaluate<Awaited<R>>(`(${fn.toString()})(...${JSON.stringify(args)})`);
  }

  waitFor<A extends unknown[]>(what: string, fn: InPage<A, unknown>, args: A, timeout = 15_000): Promise<void> {
    return poll(what, () => this.evaluate(fn, ...args), timeout);
  }

  press(key: Key): Promise<void> {
    return this.page.keyboard.press(key === ' ' ? 'Space' : key);
  }

  click(selector: string): Promise<void> {
    return this.page.click(selector);
  }

  close(): Promise<void> {
    return this.context.close();
  }

  /** Playwright's page, for what only Chromium's tests need (emulated media). */
  get playwright(): PlaywrightPage {
    return this.page;
  }
}

export class ChromiumEngine implements Engine {
  readonly name = 'chromium';
  private constructor(private readonly browser: PlaywrightBrowser) {}

  static async launch(): Promise<ChromiumEngine> {
    return new ChromiumEngine(await launchBrowser());
  }

  async newPage(): Promise<ChromiumPage> {
    const context = await this.browser.newContext({ viewport: { width: 1280, height: 800 } });
    return new ChromiumPage(context, await context.newPage());
  }

  close(): Promise<void> {
    return this.browser.close();
  }
}

// ---------------------------------------------------- Firefox ESR (Puppeteer, WebDriver BiDi)

class FirefoxPage implements EnginePage {
  constructor(private readonly page: PuppeteerPage) {}

  async goto(url: string): Promise<void> {
    await this.page.goto(url);
  }

  evaluate<A extends unknown[], R>(fn: InPage<A, R>, ...args: A): Promise<Awaited<R>> {
    return this.page.evaluate(fn as (...a: unknown[]) => Awaited<R>, ...args);
  }

  waitFor<A extends unknown[]>(what: string, fn: InPage<A, unknown>, args: A, timeout = 15_000): Promise<void> {
    return poll(what, () => this.evaluate(fn, ...args), timeout);
  }

  press(key: Key): Promise<void> {
    // Puppeteer's BiDi keyboard knows the space bar as ' ' only.
    const input: KeyInput = key;
    return this.page.keyboard.press(input);
  }

  click(selector: string): Promise<void> {
    return this.page.click(selector);
  }

  close(): Promise<void> {
    return this.page.close();
  }
}

export class FirefoxEngine implements Engine {
  readonly name = 'firefox';
  private constructor(private readonly browser: PuppeteerBrowser) {}

  static async launch(): Promise<FirefoxEngine> {
    const browser = await puppeteer.launch({
      browser: 'firefox',
      executablePath: FIREFOX,
      headless: true,
      defaultViewport: { width: 1280, height: 800 },
      // No update checks, telemetry or remote settings: the site has no internet.
      extraPrefsFirefox: { 'app.update.enabled': false, 'network.captive-portal-service.enabled': false, 'network.connectivity-service.enabled': false },
    });
    return new FirefoxEngine(browser);
  }

  async newPage(): Promise<FirefoxPage> {
    // A fresh context: its own localStorage (night mode is remembered there).
    const context = await this.browser.createBrowserContext();
    const page = await context.newPage();
    return new FirefoxPage(page);
  }

  close(): Promise<void> {
    return this.browser.close();
  }
}

// ------------------------------------------------------ WebKitGTK (classic W3C WebDriver)

/** The WebDriver key codes of the keys the scenarios press (W3C WebDriver, "Keyboard actions"). */
const WEBDRIVER_KEYS: Record<Key, string> = { Tab: '\uE004', Enter: '\uE007', ' ': '\uE00D', '=': '=', '-': '-', Escape: '\uE00C' };
const ELEMENT = 'element-6066-11e4-a52f-4a8d9adb5f9d';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
    return Promise.resolve();
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, 'SIGTERM');
  return exited;
}

/**
 * WebKitGTK's MiniBrowser through WebKitWebDriver, under an Xvfb this class starts on a free
 * display (-displayfd) and stops by PID. Plain JSON over HTTP: the `webdriver` package
 * (WebdriverIO) pulls @wdio/utils and with it driver downloaders (geckodriver, edgedriver,
 * @puppeteer/browsers), which a site without internet and Debian's driver do not need.
 */
export class WebKitEngine implements Engine {
  readonly name = 'webkit';
  private readonly pages = new Set<WebKitPage>();

  private constructor(
    private readonly xvfb: ChildProcess,
    private readonly driver: ChildProcess,
    readonly driverUrl: string,
  ) {}

  static async launch(): Promise<WebKitEngine> {
    const xvfb = spawn(XVFB, ['-displayfd', '3', '-screen', '0', '1280x800x24', '-nolisten', 'tcp'], { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
    const display = await new Promise<string>((resolve, reject) => {
      let text = '';
      let errors = '';
      xvfb.stderr!.on('data', (d: Buffer) => (errors += d.toString()));
      xvfb.stdio[3]!.on('data', (d: Buffer) => {
        text += d.toString();
        if (text.includes('\n')) {
          resolve(`:${text.trim()}`);
        }
      });
      xvfb.once('exit', (code) => reject(new Error(`Xvfb exited with ${code}: ${errors}`)));
    });
    const port = await freePort();
    const driver = spawn(WEBKIT_DRIVER, [`--port=${port}`], { env: { ...process.env, DISPLAY: display }, stdio: 'ignore' });
    const driverUrl = `http://127.0.0.1:${port}`;
    try {
      await poll('WebKitWebDriver to answer', () => fetch(`${driverUrl}/status`).then((r) => r.ok), 10_000);
    } catch (error) {
      await stop(driver);
      await stop(xvfb);
      throw error;
    }
    return new WebKitEngine(xvfb, driver, driverUrl);
  }

  /** Each page is its own WebDriver session: its own MiniBrowser, its own storage. */
  async newPage(): Promise<WebKitPage> {
    const session = await command<{ sessionId: string }>(this.driverUrl, 'POST', '/session', {
      capabilities: {
        alwaysMatch: {
          'webkitgtk:browserOptions': { binary: MINIBROWSER, args: ['--automation'] },
        },
      },
    });
    const page = new WebKitPage(`${this.driverUrl}/session/${session.sessionId}`, () => this.pages.delete(page));
    this.pages.add(page);
    await command(page.url, 'POST', '/window/rect', { width: 1280, height: 800 }).catch(() => undefined);
    return page;
  }

  async close(): Promise<void> {
    await Promise.all([...this.pages].map((p) => p.close()));
    await stop(this.driver);
    await stop(this.xvfb);
  }
}

async function command<T = unknown>(base: string, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await res.json()) as { value: T & { error?: string; message?: string } };
  if (!res.ok) {
    throw new Error(`WebDriver ${method} ${path}: ${json.value?.error ?? res.status} ${json.value?.message ?? ''}`);
  }
  return json.value;
}

class WebKitPage implements EnginePage {
  private closed = false;

  constructor(
    readonly url: string,
    private readonly onClose: () => void,
  ) {}

  async goto(url: string): Promise<void> {
    await command(this.url, 'POST', '/url', { url });
  }

  evaluate<A extends unknown[], R>(fn: InPage<A, R>, ...args: A): Promise<Awaited<R>> {
    // The async form waits for a returned promise, as the other engines' evaluate does.
    return command<Awaited<R>>(this.url, 'POST', '/execute/async', {
      script: `const done = arguments[arguments.length - 1]; Promise.resolve((${fn.toString()}).apply(null, Array.prototype.slice.call(arguments, 0, -1))).then(done, (e) => done({ __error: String(e) }));`,
      args,
    }).then((value) => {
      if (value && typeof value === 'object' && '__error' in value) {
        throw new Error(`in the page: ${String((value as { __error: unknown }).__error)}`);
      }
      return value;
    });
  }

  waitFor<A extends unknown[]>(what: string, fn: InPage<A, unknown>, args: A, timeout = 15_000): Promise<void> {
    return poll(what, () => this.evaluate(fn, ...args), timeout);
  }

  async press(key: Key): Promise<void> {
    const value = WEBDRIVER_KEYS[key];
    await command(this.url, 'POST', '/actions', {
      actions: [{ type: 'key', id: 'keyboard', actions: [{ type: 'keyDown', value }, { type: 'keyUp', value }] }],
    });
    await command(this.url, 'DELETE', '/actions');
  }

  async click(selector: string): Promise<void> {
    const found = await command<Record<string, string>>(this.url, 'POST', '/element', { using: 'css selector', value: selector });
    // WebKitWebDriver answers with the legacy key "ELEMENT" as well as (or instead of) the W3C one.
    const id = found[ELEMENT] ?? found.ELEMENT ?? Object.values(found)[0];
    await command(this.url, 'POST', `/element/${id}/click`, {});
  }

  async close(): Promise<void> {
    if (this.closed) {
      return;
    }
    this.closed = true;
    this.onClose();
    await command(this.url, 'DELETE', '').catch(() => undefined);
  }
}

/** Launches `name`'s engine. */
export function launchEngine(name: EngineName): Promise<Engine> {
  switch (name) {
    case 'chromium':
      return ChromiumEngine.launch();
    case 'firefox':
      return FirefoxEngine.launch();
    case 'webkit':
      return WebKitEngine.launch();
  }
}
