import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module.js';
import { ConfigValidationError } from './config/env.validation.js';
import { ViewerWsAdapter } from './gateway/viewer-ws.adapter.js';
import { PortBindError, PortInUseError } from './modules/lifecycle/port-in-use.error.js';

async function bootstrap(): Promise<void> {
  const module = await AppModule.register();
  const app = await NestFactory.create<NestExpressApplication>(module, {
    abortOnError: false,
    // Per-viewer and per-publish debug lines would flood the log at a busy star party.
    logger: ['log', 'warn', 'error', 'fatal'],
    // Keep-alive connections would otherwise hold the shutdown up.
    forceCloseConnections: true,
  });
  app.useWebSocketAdapter(new ViewerWsAdapter(app));
  // Exit 0 after a clean SIGTERM / SIGINT, instead of re-raising the signal (exit 143).
  app.enableShutdownHooks(['SIGTERM', 'SIGINT'], { useProcessExit: true });
  // The module binds the port at START (ServerLifecycle), so init, not listen.
  await app.init();
}

bootstrap().catch((err: unknown) => {
  if (err instanceof ConfigValidationError) {
    for (const line of err.lines) {
      process.stderr.write(`${line}\n`);
    }
  } else if (err instanceof PortInUseError || err instanceof PortBindError) {
    process.stderr.write(`${err.name}: ${err.message}\n`);
  } else {
    new Logger('bootstrap').error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  }
  process.exit(1);
});
