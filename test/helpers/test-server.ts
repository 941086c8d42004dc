import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { join } from 'node:path';
import type { ImageServerOptions } from '../../src/config/image-server-options.js';
import { ViewerWsAdapter } from '../../src/gateway/viewer-ws.adapter.js';
import { ImageServerModule } from '../../src/image-server.module.js';
import { setupApiDocs } from '../../src/modules/status/api-docs.js';
import { ImageNotifier } from '../../src/modules/image-notifier/image-notifier.service.js';
import { ServerLifecycle } from '../../src/modules/lifecycle/server-lifecycle.service.js';
import { FileStorage } from '../../src/modules/web-assets/file-storage.repository.js';
import { NETWORK_INTERFACES, type InterfaceTable } from '../../src/modules/network-info/network-interfaces.provider.js';
import { makeTempFolder } from './temp-folder.js';

export interface TestServer {
  app: INestApplication;
  /** http://127.0.0.1:<port> (https:// when started with `https`) */
  baseUrl: string;
  /** ws://127.0.0.1:<port>/ws */
  wsUrl: string;
  port: number;
  workFolder: string;
  webFolder: string;
  notifier: ImageNotifier;
  lifecycle: ServerLifecycle;
  /** Closes the app (STOP with its grace, then the HTTP server) and removes the temp folder. */
  close(): Promise<void>;
}

/**
 * The real service on a random port (`port: 0`) in a fresh temp folder, with the same
 * ws adapter as production and a short disconnect grace so STOP tests run in ~50 ms.
 */
export async function startTestServer(
  options: Partial<ImageServerOptions> = {},
  { interfaces, https, storage }: { interfaces?: InterfaceTable; https?: { key: string; cert: string }; storage?: FileStorage } = {},
): Promise<TestServer> {
  const temp = await makeTempFolder();
  const workFolder = options.workFolder ?? join(temp.path, 'work');
  const builder = Test.createTestingModule({
    imports: [
      ImageServerModule.forRoot({
        // Binds its own port at START, as the standalone app does.
        listen: true,
        port: 0,
        host: '127.0.0.1',
        disconnectGraceMs: 50,
        printQrCode: false,
        ...options,
        workFolder,
      }),
    ],
  });
  if (interfaces) {
    // The machine's interfaces, fed as a table instead of read from the OS.
    builder.overrideProvider(NETWORK_INTERFACES).useValue({ read: () => interfaces });
  }
  if (storage) {
    // The filesystem seen through a test's own FileStorage (to stop between two renames).
    builder.overrideProvider(FileStorage).useValue(storage);
  }
  const moduleRef = await builder.compile();
  const app = moduleRef.createNestApplication({ logger: ['error'], forceCloseConnections: true, httpsOptions: https });
  app.useWebSocketAdapter(new ViewerWsAdapter(app));
  setupApiDocs(app);
  await app.init();
  const lifecycle = app.get(ServerLifecycle);
  const port = lifecycle.port;
  const options_ = app.get<ImageServerOptions>('STACKCAST_IMAGE_SERVER_OPTIONS');
  let closed = false;
  return {
    app,
    baseUrl: `${https ? 'https' : 'http'}://127.0.0.1:${port}`,
    wsUrl: `${https ? 'wss' : 'ws'}://127.0.0.1:${port}/ws`,
    port,
    workFolder,
    webFolder: options_.webFolder,
    notifier: app.get(ImageNotifier),
    lifecycle,
    async close() {
      if (closed) {
        return;
      }
      closed = true;
      await app.close();
      await temp.remove();
    },
  };
}
