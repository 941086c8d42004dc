import { Logger } from '@nestjs/common';
import { WsAdapter } from '@nestjs/platform-ws';
import type { MessageMappingProperties } from '@nestjs/websockets';
import type { Observable } from 'rxjs';
import type { WebSocket, WebSocketServer } from 'ws';

/**
 * Nest's ws adapter with three changes for a public viewer socket:
 * - no per-connection message pipeline (an rxjs chain that JSON-parses every frame)
 *   for gateways that declare no message handler: viewers send nothing the server reads,
 *   and thousands of phones should not each carry that chain;
 * - a client's protocol error (an oversized frame, bad UTF-8) is not logged as an
 *   application error: any visitor could flood the log that way. ws closes that client
 *   with the right code; server errors are still logged;
 * - less held per connection: one error listener shared by every client, and `on`
 *   rather than `once` for the disconnect hook (ws emits 'close' once), which spares a
 *   wrapper per client.
 */
export class ViewerWsAdapter extends WsAdapter {
  private readonly viewerLogger = new Logger('ViewerWsAdapter');
  private readonly onClientError = (err: Error): void => this.viewerLogger.debug(`client error: ${err.message}`);

  override bindMessageHandlers(
    client: WebSocket,
    handlers: MessageMappingProperties[],
    transform: (data: unknown) => Observable<unknown>,
  ): void {
    if (handlers.length === 0) {
      return;
    }
    super.bindMessageHandlers(client, handlers, transform);
  }

  override bindErrorHandler(server: WebSocketServer): WebSocketServer {
    server.on('connection', (ws: WebSocket) => ws.on('error', this.onClientError));
    server.on('error', (err) => this.viewerLogger.error(err));
    return server;
  }

  override bindClientDisconnect(client: WebSocket, callback: (...args: unknown[]) => void): void {
    client.on('close', callback);
  }
}
