import 'reflect-metadata';
import { Controller, Get, Inject, Injectable, Module, type LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { BroadcastService } from '../../src/gateway/broadcast.service.js';
import { ImageNotifier, ImageServerModule, PortInUseError, ServerLifecycle, ViewerSessions, ViewerWsAdapter } from '../../src/index.js';
import { ControlGuard } from '../../src/shared/control-guard/control.guard.js';
import { ExampleStacker, ExampleStackerModule } from '../example/stacker.module.js';
import { makeJpeg } from '../helpers/images.js';
import { makeTempFolder } from '../helpers/temp-folder.js';
import { RecordingClient } from '../helpers/ws-client.js';

describe('embedding ImageServerModule in another Nest app', () => {
  it('a provider of the host app injects ImageNotifier and publishes to real clients', async () => {
    const temp = await makeTempFolder();
    const app = await NestFactory.create(
      ExampleStackerModule.register({ listen: true, port: 0, host: '127.0.0.1', workFolder: temp.path, printQrCode: false, disconnectGraceMs: 50 }),
      { logger: false, abortOnError: false },
    );
    app.useWebSocketAdapter(new ViewerWsAdapter(app));
    await app.init();
    const port = app.get(ServerLifecycle).port;
    const client = await RecordingClient.connect(`ws://127.0.0.1:${port}/ws`);
    const stacker = app.get(ExampleStacker);
    const frames = [await makeJpeg({ color: { r: 255, g: 0, b: 0 } }), await makeJpeg({ color: { r: 0, g: 0, b: 255 } })];
    for (const frame of frames) {
      await stacker.onStacked(frame, 30);
    }
    await client.waitFor((c) => c.count('new_image') === 2);
    expect(await readFile(join(temp.path, 'web_image.jpg'))).toEqual(frames[1]);
    expect(JSON.parse(await readFile(join(temp.path, 'data.json'), 'utf8'))).toMatchObject({ STACK_SIZE: 2, EXPO: '0:01:00' });
    const status = (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as { clients: number; stackSize: number };
    expect(status).toMatchObject({ clients: 1, stackSize: 2 });
    await app.close();
    await client.closed;
    expect(client.count('disconnect')).toBe(1);
    await temp.remove();
  });

  it('the module exports exactly the public API: ImageNotifier, ServerLifecycle and ViewerSessions, not the internals', async () => {
    const temp = await makeTempFolder();
    const stackcast = ImageServerModule.forRoot({ workFolder: temp.path, printQrCode: false });
    const hostWith = async (token: unknown): Promise<unknown> => {
      @Injectable()
      class HostService {
        constructor(@Inject(token as string) readonly injected: unknown) {}
      }
      @Module({ imports: [stackcast], providers: [HostService] })
      class HostModule {}
      return Test.createTestingModule({ imports: [HostModule] })
        .compile()
        .then(async (ref) => {
          const injected = ref.get(HostService).injected;
          await ref.close();
          return injected;
        });
    };
    for (const exported of [ImageNotifier, ServerLifecycle, ViewerSessions]) {
      expect(await hostWith(exported)).toBeInstanceOf(exported);
    }
    for (const internal of [BroadcastService, ControlGuard]) {
      await expect(hostWith(internal), internal.name).rejects.toThrow(/can't resolve dependencies/i);
    }
    await temp.remove();
  });

  it('forRootAsync with isGlobal lets any module inject ImageNotifier', async () => {
    const temp = await makeTempFolder();
    @Injectable()
    class Consumer {
      constructor(readonly notifier: ImageNotifier) {}
    }
    @Module({ providers: [Consumer] })
    class FeatureModule {}
    @Module({
      imports: [
        ImageServerModule.forRootAsync({
          isGlobal: true,
          useFactory: () => ({ port: 0, host: '127.0.0.1', workFolder: temp.path, printQrCode: false }),
        }),
        FeatureModule,
      ],
    })
    class HostModule {}
    const app = await NestFactory.create(HostModule, { logger: false, abortOnError: false });
    app.useWebSocketAdapter(new ViewerWsAdapter(app));
    await app.init();
    const jpeg = await makeJpeg();
    await app.get(Consumer).notifier.publish(jpeg);
    expect(await readFile(join(temp.path, 'web_image.jpg'))).toEqual(jpeg);
    await app.close();
    await temp.remove();
  });

  it('the host app\'s own routes are left alone, also while stackcast is stopped', async () => {
    const temp = await makeTempFolder();
    @Controller()
    class HostController {
      @Get('hello')
      hello(): { hello: string } {
        return { hello: 'world' };
      }
    }
    @Module({
      imports: [ImageServerModule.forRoot({ listen: true, port: 0, host: '127.0.0.1', workFolder: temp.path, printQrCode: false, disconnectGraceMs: 20 })],
      controllers: [HostController],
    })
    class HostModule {}
    const app = await NestFactory.create(HostModule, { logger: false, abortOnError: false });
    app.useWebSocketAdapter(new ViewerWsAdapter(app));
    await app.init();
    const lifecycle = app.get(ServerLifecycle);
    const base = `http://127.0.0.1:${lifecycle.port}`;
    // A file of the same name in the web folder does not shadow the host's route.
    await writeFile(join(temp.path, 'hello'), 'not this');
    expect(await (await fetch(`${base}/hello`)).json()).toEqual({ hello: 'world' });
    await lifecycle.stop();
    const res = await fetch(`${base}/hello`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ hello: 'world' });
    expect((await fetch(`${base}/index.html`)).status).toBe(503);
    await app.close();
    await temp.remove();
  });

  it('a taken port throws PortInUseError from app.init()', async () => {
    const temp = await makeTempFolder();
    const first = await NestFactory.create(ImageServerModule.forRoot({ listen: true, port: 0, host: '127.0.0.1', workFolder: join(temp.path, 'a'), printQrCode: false }), { logger: false, abortOnError: false });
    first.useWebSocketAdapter(new ViewerWsAdapter(first));
    await first.init();
    const port = first.get(ServerLifecycle).port;
    const second = await NestFactory.create(ImageServerModule.forRoot({ listen: true, port, host: '127.0.0.1', workFolder: join(temp.path, 'b'), printQrCode: false }), { logger: false, abortOnError: false });
    second.useWebSocketAdapter(new ViewerWsAdapter(second));
    const error = await second.init().then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(PortInUseError);
    expect((error as PortInUseError).port).toBe(port);
    expect((error as Error).message).toContain(String(port));
    await second.close();
    await first.close();
    await temp.remove();
  });

  it('served on the host\'s own port (not 8000), the terminal URL, the QR code and /status name that port', async () => {
    const temp = await makeTempFolder();
    const lines: string[] = [];
    const record = (message: unknown): void => {
      lines.push(String(message));
    };
    const logger: LoggerService = { log: record, warn: record, error: record };
    const stdout = vi.spyOn(process.stdout, 'write');
    const app = await NestFactory.create(ImageServerModule.forRoot({ workFolder: temp.path, disconnectGraceMs: 20, addressRefreshMs: 0 }), { logger, abortOnError: false });
    try {
      app.useWebSocketAdapter(new ViewerWsAdapter(app));
      await app.listen(0, '127.0.0.1');
      const port = app.get(ServerLifecycle).port;
      expect(port).not.toBe(8000);
      const printed = (): string => stdout.mock.calls.map(([chunk]) => String(chunk)).join('');
      await vi.waitFor(() => expect(printed()).toContain('Scan to watch on a phone'), { timeout: 5000 });
      const status = (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as { url: string };
      expect(status.url).toMatch(new RegExp(`:${port}$`));
      expect(printed()).toMatch(new RegExp(`Scan to watch on a phone: ${status.url.replace(/[.]/g, '\\.')}\n`));
      const live = lines.filter((line) => line.startsWith('stackcast is live at'));
      expect(live).toEqual([`stackcast is live at ${status.url} (listening on 127.0.0.1:${port})`]);
      expect([printed(), ...lines].join('\n')).not.toContain(':8000');
    } finally {
      stdout.mockRestore();
      await app.close();
      await temp.remove();
    }
  });
});
