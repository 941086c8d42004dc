// The README's screenshot: the built service with the demo source (a synthetic galaxy),
// the viewer in Debian's headless Chromium at a phone's size, saved to
// docs/images/viewer-phone.png. Run `npm run build` first, then `node scripts/screenshot.mjs`.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import sharp from 'sharp';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUT = join(ROOT, 'docs/images/viewer-phone.png');
const FRAMES = Number(process.env.FRAMES ?? 8); // enough demo frames for the galaxy to stand out
const PHONE = { width: 390, height: 844, deviceScaleFactor: 2 };

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

async function until(what, check, timeoutMs) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const work = await mkdtemp(join(tmpdir(), 'stackcast-screenshot-'));
const port = await freePort();
const service = spawn(process.execPath, [join(ROOT, 'dist/main.js')], {
  env: { ...process.env, PORT: String(port), WORK_FOLDER: work, DEMO: 'true', DEMO_INTERVAL_MS: '500', RESUME: 'never' },
  stdio: ['ignore', 'ignore', 'inherit'],
});
let browser;
try {
  const base = `http://127.0.0.1:${port}`;
  await until('/status 200', () => fetch(`${base}/status`).then((r) => r.ok, () => false), 30_000);
  await until(`${FRAMES} demo frames`, async () => {
    const status = await fetch(`${base}/status`).then((r) => r.json());
    return status.stackSize >= FRAMES;
  }, 60_000);
  // The same flags as the browser suite (test/browser/browser.ts): nothing talks to the internet.
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
      '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: PHONE.width, height: PHONE.height }, deviceScaleFactor: PHONE.deviceScaleFactor, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  await page.goto(`${base}/`);
  // window.stackcast is the viewer's read-only hook: wait for a version drawn and no load under way.
  await page.waitForFunction(() => window.stackcast?.versionsShown >= 1 && !window.stackcast.busy && window.stackcast.stackSize !== null, undefined, { timeout: 30_000 });
  await page.waitForTimeout(1000); // let OpenSeadragon's fade-in finish
  const png = await page.screenshot();
  await sharp(png).png({ palette: true, quality: 90, effort: 10 }).toFile(OUT);
  console.log(`${OUT}: ${PHONE.width}x${PHONE.height} @${PHONE.deviceScaleFactor}, ${(await stat(OUT)).size} bytes`);
} finally {
  await browser?.close();
  service.kill('SIGTERM');
  await new Promise((r) => service.once('exit', r));
  await rm(work, { recursive: true, force: true });
}
