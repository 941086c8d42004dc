import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeJpeg } from '../helpers/images.js';
import { makeTempFolder } from '../helpers/temp-folder.js';
import { RecordingClient } from '../helpers/ws-client.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The host's own copies of what stackcast expects as peers, at the versions this repository uses. */
const HOST_PACKAGES = ['@nestjs/common', '@nestjs/core', '@nestjs/platform-express', '@nestjs/websockets', '@nestjs/platform-ws', 'rxjs', 'reflect-metadata'];

/** A host Nest app in plain ESM (no build step): a provider that injects ImageNotifier publishes the file named on stdin. */
const HOST_APP = `
import 'reflect-metadata';
import { Inject, Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { WsAdapter } from '@nestjs/platform-ws';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { ImageNotifier, ImageServerModule } from 'stackcast';

class Publisher {
  constructor(notifier) { this.notifier = notifier; }
  async publishFile(path) { await this.notifier.publish(await readFile(path), { stackSize: 3 }); }
}
Injectable()(Publisher);
Inject(ImageNotifier)(Publisher, undefined, 0);

class HostModule {}
Module({
  imports: [ImageServerModule.forRoot({ workFolder: process.argv[2], printQrCode: false, disconnectGraceMs: 50 })],
  providers: [Publisher],
})(HostModule);

const app = await NestFactory.create(HostModule, { logger: ['error'] });
app.useWebSocketAdapter(new WsAdapter(app));
await app.listen(0, '127.0.0.1');
process.stdout.write('port ' + app.getHttpServer().address().port + '\\n');
for await (const line of createInterface({ input: process.stdin })) {
  await app.get(Publisher).publishFile(line.trim());
  process.stdout.write('published\\n');
}
await app.close();
`;

async function versionOf(name: string): Promise<string> {
  const pkg = JSON.parse(await readFile(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

describe('the packed library in a fresh Nest app', () => {
  let temp: Awaited<ReturnType<typeof makeTempFolder>>;
  let appDir: string;

  beforeAll(async () => {
    if (!existsSync(join(ROOT, 'dist/index.js'))) {
      throw new Error('dist/ is missing: run `npm run build` first');
    }
    temp = await makeTempFolder('stackcast-pack-');
    // dist/ is built by `npm test` (prepack would rebuild it under the other tests' feet).
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', temp.path], { cwd: ROOT });
    const [{ filename, files }] = JSON.parse(stdout) as [{ filename: string; files: { path: string }[] }];
    expect(files.some((f) => f.path === 'dist/index.js')).toBe(true);
    expect(files.some((f) => f.path.startsWith('src/'))).toBe(false);
    appDir = join(temp.path, 'host');
    const dependencies: Record<string, string> = { stackcast: `file:${join(temp.path, filename)}` };
    for (const name of HOST_PACKAGES) {
      dependencies[name] = await versionOf(name);
    }
    await run('mkdir', ['-p', appDir]);
    await writeFile(join(appDir, 'package.json'), JSON.stringify({ name: 'host', private: true, type: 'module', dependencies }));
    await writeFile(join(appDir, 'main.mjs'), HOST_APP);
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: appDir });
  }, 180_000);
  afterAll(() => temp?.remove());

  it('installs beside the host\'s own @nestjs packages without a second @nestjs/core', async () => {
    const { stdout } = await run('npm', ['ls', '@nestjs/core', '--all', '--parseable'], { cwd: appDir });
    expect(stdout.trim().split('\n')).toEqual([join(appDir, 'node_modules/@nestjs/core')]);
  });

  it('serves on the host\'s app.listen() port: an injected ImageNotifier publishes and a ws client gets new_image', async () => {
    const work = join(temp.path, 'work');
    const image = join(temp.path, 'frame.jpg');
    const jpeg = await makeJpeg();
    await writeFile(image, jpeg);
    const child = spawn(process.execPath, ['main.mjs', work], { cwd: appDir, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const lineMatching = (pattern: RegExp): Promise<RegExpMatchArray> =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${String(pattern)} from the host app; stderr:\n${err}`)), 20_000);
        const check = (): void => {
          const match = pattern.exec(out);
          if (match) {
            clearTimeout(timer);
            child.stdout.off('data', onData);
            resolve(match);
          }
        };
        const onData = (d: Buffer): void => {
          out += d.toString();
          check();
        };
        child.stdout.on('data', onData);
        check();
      });
    try {
      const port = Number((await lineMatching(/port (\d+)\n/))[1]);
      const client = await RecordingClient.connect(`ws://127.0.0.1:${port}/ws`);
      child.stdin.write(`${image}\n`);
      await lineMatching(/published\n/);
      await client.waitFor((c) => c.count('new_image') === 1);
      expect(await readFile(join(work, 'web_image.jpg'))).toEqual(jpeg);
      const status = (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as { stackSize: number; port: number };
      expect(status).toMatchObject({ stackSize: 3, port });
      client.close();
    } finally {
      child.kill('SIGTERM');
    }
  });
});
