import {
  Inject,
  Injectable,
  Logger,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server as TlsServer } from 'node:tls';
import { performance } from 'node:perf_hooks';
import { SerialQueue } from '../../common/serial-queue.js';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';
import { BroadcastService } from '../../gateway/broadcast.service.js';
import { ViewerSessions } from '../../gateway/viewer-sessions.service.js';
import { NetworkInfoService, type Advertisement } from '../network-info/network-info.service.js';
import { WebAssetsService } from '../web-assets/web-assets.service.js';
import { HttpHardening } from './http-hardening.service.js';
import { HttpLimits } from '../../shared/http-limits/http-limits.js';
import { PortBindError, PortInUseError } from './port-in-use.error.js';
import { ViewerGate, type LifecycleState } from '../../shared/viewer-gate/viewer-gate.js';
import { ScopeHooks } from '../../shared/scope-hooks/scope-hooks.js';

export type { LifecycleState } from '../../shared/viewer-gate/viewer-gate.js';

/** What a STOP did, for the log and the control API. */
export interface StopReport {
  /** Clients connected when STOP began. */
  clients: number;
  /** Clients still open when the grace ran out, then terminated. */
  terminated: number;
  /** Time from the disconnect broadcast to the last client gone. */
  durationMs: number;
}

/**
 * Owns the service's state and the START / STOP commands, whoever gives them: the
 * bootstrap, `POST /api/server/{start,stop}`, a signal through Nest's shutdown hooks, or
 * an embedding app. Commands run one after another, so STOP twice, START while stopping
 * or a signal during START each see a settled state.
 */
@Injectable()
export class ServerLifecycle implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(ServerLifecycle.name);
  private readonly commands = new SerialQueue();
  private boundPort: number | undefined;
  private shuttingDown = false;

  constructor(
    @Inject(IMAGE_SERVER_OPTIONS) private readonly options: ImageServerOptions,
    private readonly adapterHost: HttpAdapterHost,
    private readonly assets: WebAssetsService,
    private readonly broadcast: BroadcastService,
    private readonly network: NetworkInfoService,
    private readonly gate: ViewerGate,
    private readonly front: HttpHardening,
    private readonly limits: HttpLimits,
    private readonly sessions: ViewerSessions,
    private readonly scopes: ScopeHooks,
  ) {}

  get state(): LifecycleState {
    return this.gate.state;
  }

  /** Viewer routes and `/ws` upgrades are served only while running. */
  get acceptsViewers(): boolean {
    return this.gate.acceptsViewers;
  }

  /**
   * The bound port (the real one when `port` was 0), the host's port once its
   * `app.listen()` bound it, or the configured one before binding.
   */
  get port(): number {
    return this.boundPort ?? this.hostPort() ?? this.options.port;
  }

  /** The advertised URL and candidates as of the last START. */
  get advertised(): Advertisement {
    return this.network.current();
  }

  /** START: publish the files, bind (first time only), accept viewers, advertise. */
  start(): Promise<void> {
    return this.enqueue(() => this.runStart());
  }

  /** STOP: tell every viewer, wait for them to close (at most the grace), end the rest. */
  stop(): Promise<StopReport> {
    return this.enqueue(() => this.runStop());
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.start();
  }

  /**
   * The disconnect and the grace must happen here: right after this hook the ws adapter
   * terminates every client without a close frame.
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.shuttingDown = true;
    await this.stop();
  }

  private enqueue<T>(command: () => Promise<T>): Promise<T> {
    return this.commands.run(command);
  }

  private httpServer(): Server | undefined {
    return this.adapterHost.httpAdapter?.getHttpServer() as Server | undefined;
  }

  private hostPort(): number | undefined {
    const address = this.httpServer()?.address();
    return address !== null && typeof address === 'object' ? address.port : undefined;
  }

  private async runStart(): Promise<void> {
    if (this.gate.state === 'running' || this.shuttingDown) {
      return;
    }
    this.gate.set('starting');
    this.logger.log(`starting: publishing the viewer into ${this.options.webFolder}`);
    let advertisement: Advertisement;
    try {
      // Bind before writing: a second instance started by mistake on the same port and
      // folder must fail without overwriting the running one's image and data.json. Until
      // the files are written the state is 'starting', so viewers get 503 meanwhile.
      if (this.options.listen && this.boundPort === undefined) {
        this.boundPort = await this.bind();
      }
      await this.assets.publishStatic();
      // HTTPS when the app was created with httpsOptions (TLS_CERT_FILE, TLS_SELF_SIGNED).
      const secure = this.adapterHost.httpAdapter.getHttpServer() instanceof TlsServer;
      advertisement = this.network.advertise(this.port, secure ? 'https' : 'http');
    } catch (err) {
      this.gate.set('stopped');
      throw err;
    }
    if (this.shuttingDown) {
      // A signal arrived during START: the shutdown's STOP runs next.
      this.gate.set('stopped');
      return;
    }
    this.front.install(this.httpServer());
    const waitsForHost = this.readvertiseOnHostListen();
    this.broadcast.open();
    this.gate.set('running');
    this.sessions.serverStarted();
    await this.scopes.startAll?.();
    if (!waitsForHost) {
      await this.announce(advertisement);
    }
  }

  private async runStop(): Promise<StopReport> {
    if (this.gate.state === 'stopped') {
      return { clients: 0, terminated: 0, durationMs: 0 };
    }
    this.gate.set('stopping');
    // The other scopes' viewers are told at the same time, within the same grace.
    const scopesStopped = this.scopes.stopAll?.() ?? Promise.resolve();
    const clients = this.broadcast.count;
    const began = performance.now();
    this.broadcast.broadcast({ type: 'disconnect' });
    // Clients told to disconnect get nothing more (a publish during STOP still lands on disk).
    this.broadcast.close();
    const allClosed = await this.broadcast.waitUntilEmpty(this.options.disconnectGraceMs);
    const terminated = allClosed ? 0 : this.broadcast.terminateAll();
    const durationMs = Math.round(performance.now() - began);
    this.gate.set('stopped');
    this.logger.log(
      `stopped: ${clients} viewer(s) told, ${clients - terminated} closed in ${durationMs} ms` +
        (terminated > 0 ? `, ${terminated} terminated after the ${this.options.disconnectGraceMs} ms grace` : ''),
    );
    this.sessions.serverStopped({ clients, terminated, durationMs });
    await scopesStopped;
    return { clients, terminated, durationMs };
  }

  /**
   * Embedded with `listen: false`, START runs inside the host's `app.listen()` before it
   * binds: once bound, the advertisement is rebuilt with the real port and only then
   * printed (URL and QR code). True when the announcement waits for that.
   */
  private readvertiseOnHostListen(): boolean {
    const server = this.httpServer();
    if (this.options.listen || !server || typeof server.once !== 'function' || server.listening) {
      return false;
    }
    server.once('listening', () => {
      void this.announce(this.network.advertise(this.port));
    });
    return true;
  }

  /** Binds the HTTP server, reporting the real error (no probing the port first). */
  private bind(): Promise<number> {
    const server = this.adapterHost.httpAdapter.getHttpServer() as Server;
    const { port, host } = this.options;
    // Caps, timeouts and the slow-reader sweep apply to the server this module binds.
    this.limits.limitServer(server);
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        server.off('listening', onListening);
        reject(err.code === 'EADDRINUSE' ? new PortInUseError(port) : new PortBindError(port, err.code, err));
      };
      const onListening = (): void => {
        server.off('error', onError);
        resolve((server.address() as AddressInfo).port);
      };
      server.once('error', onError);
      server.once('listening', onListening);
      server.listen(port, host);
    });
  }

  /** `host:port` of the bound socket (the host app's, when embedded), else the configured one. */
  private listeningOn(): string {
    const bound = this.httpServer()?.address();
    if (bound === null || bound === undefined || typeof bound !== 'object') {
      return `${this.options.host}:${this.port}`;
    }
    return `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`;
  }

  private async announce(ad: Advertisement): Promise<void> {
    this.logger.log(`stackcast is live at ${ad.url} (listening on ${this.listeningOn()})`);
    if (ad.limitedAccess) {
      this.logger.warn(`limited access: ${ad.url} is reachable from this machine only`);
    }
    if (this.options.publicUrl !== undefined && this.options.controlToken === undefined) {
      this.logger.warn(
        'PUBLIC_URL is set but CONTROL_TOKEN is not: behind a reverse proxy on this machine every visitor looks local; set CONTROL_TOKEN to protect the control routes',
      );
    }
    if (this.options.printQrCode) {
      try {
        process.stdout.write(await this.scanInstructions(ad.url));
      } catch (err) {
        this.logger.warn(`could not draw the QR code: ${(err as Error).message}`);
      }
    }
  }

  /** The terminal's QR codes: the hotspot's first when `wifiSsid` is set (its password stays inside the code). */
  private async scanInstructions(url: string): Promise<string> {
    const wifi = this.network.wifiQrText();
    const page = await this.network.qrTerminal(url);
    if (wifi === undefined) {
      return `\nScan to watch on a phone: ${url}\n${page}\n`;
    }
    return (
      `\n1. Join the Wi-Fi "${this.network.wifiSsid ?? ''}": scan this code with the phone's camera\n${await this.network.qrTerminal(wifi)}\n` +
      `2. Open the page: ${url}\n${page}\n`
    );
  }
}
