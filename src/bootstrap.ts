import 'reflect-metadata';
import { Logger, type LogLevel } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module.js';
import { StackcastLogger } from './common/stackcast-logger.js';
import { ConfigValidationError, validateEnv } from './config/env.validation.js';
import { tlsFromEnvironment } from './config/environment-options.js';
import { unknownVariableWarnings } from './config/unknown-variables.js';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from './config/image-server-options.js';
import { ViewerWsAdapter } from './gateway/viewer-ws.adapter.js';
import { PortBindError, PortInUseError } from './modules/lifecycle/port-in-use.error.js';
import { loadTls } from './modules/lifecycle/tls.js';
import { warnAboutCertificate } from './modules/lifecycle/certificate-check.js';
import { ServerLifecycle } from './modules/lifecycle/server-lifecycle.service.js';
import { setupApiDocs } from './modules/status/api-docs.js';
import { WebFolderError } from './modules/web-assets/web-assets.service.js';

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;
/** Beyond the disconnect grace, what closing the server may take before the process gives up. */
const SHUTDOWN_MARGIN_MS = 3000;
// Per-viewer and per-publish debug lines would flood the log at a busy star party.
const LOG_LEVELS: LogLevel[] = ['log', 'warn', 'error', 'fatal'];

/**
 * The standalone service: validated config, the ws adapter, shutdown hooks, START.
 * `onSignalsHandled` is called once Nest's own signal handlers are in place.
 */
export async function bootstrap(onSignalsHandled: () => void): Promise<void> {
  const module = await AppModule.register();
  // register() validated the environment (and put .env's values into it); HTTPS must be
  // known before Nest creates the server.
  const tlsSource = tlsFromEnvironment(validateEnv(process.env));
  const tls = tlsSource === undefined ? undefined : await loadTls(tlsSource);
  const app = await NestFactory.create<NestExpressApplication>(module, {
    httpsOptions: tls === undefined ? undefined : { key: tls.key, cert: tls.cert },
    abortOnError: false,
    logger: LOG_LEVELS,
    // Held until the logger of LOG_FORMAT is in place, so every line has the same format.
    bufferLogs: true,
    // Keep-alive connections would otherwise hold the shutdown up.
    forceCloseConnections: true,
  });
  const json = app.get(ConfigService).get<string>('LOG_FORMAT') === 'json';
  app.useLogger(new StackcastLogger({ json, logLevels: LOG_LEVELS }));
  // From here on lines are printed as they come, so START's URL and QR code come last.
  app.flushLogs();
  for (const line of unknownVariableWarnings(process.env)) {
    new Logger('Config').warn(line);
  }
  app.useWebSocketAdapter(new ViewerWsAdapter(app));
  setupApiDocs(app);
  // Exit 0 after a clean SIGTERM / SIGINT, instead of re-raising the signal (exit 143).
  app.enableShutdownHooks([...SIGNALS], { useProcessExit: true });
  const { disconnectGraceMs } = app.get<ImageServerOptions>(IMAGE_SERVER_OPTIONS);
  for (const signal of SIGNALS) {
    process.once(signal, () => {
      // A shutdown that hangs (a stalled network folder) must not keep the process alive.
      setTimeout(() => {
        process.stderr.write(`shutdown did not finish within ${disconnectGraceMs + SHUTDOWN_MARGIN_MS} ms; exiting\n`);
        process.exit(1);
      }, disconnectGraceMs + SHUTDOWN_MARGIN_MS).unref();
    });
  }
  onSignalsHandled();
  // The module binds the port at START (ServerLifecycle), so init, not listen.
  await app.init();
  if (tls !== undefined && tlsSource?.kind === 'files') {
    warnAboutCertificate(tls.cert, app.get(ServerLifecycle).advertised.displayedAddress);
  }
}

/** A known startup error is one clean line; anything else keeps its stack. Exit code 1. */
export function reportStartupError(err: unknown): never {
  if (err instanceof ConfigValidationError) {
    for (const line of err.lines) {
      process.stderr.write(`${line}\n`);
    }
  } else if (err instanceof PortInUseError || err instanceof PortBindError || err instanceof WebFolderError) {
    process.stderr.write(`${err.name}: ${err.message}\n`);
  } else {
    new Logger('bootstrap').error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  }
  process.exit(1);
}
