import { WsAdapter } from '@nestjs/platform-ws';
import type { MessageMappingProperties } from '@nestjs/websockets';
import type { Observable } from 'rxjs';
import type { WebSocket } from 'ws';

/**
 * Nest's ws adapter, minus the per-connection message pipeline (an rxjs chain that
 * JSON-parses every frame) for gateways that declare no message handler: viewers send
 * nothing the server reads, and thousands of phones should not each carry that chain.
 */
export class ViewerWsAdapter extends WsAdapter {
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
}
