import { ConsoleLogger } from '@nestjs/common';

/** Contexts of Nest's start-up chatter: module loading, the route map, "application started". */
const STARTUP_CONTEXTS = new Set(['NestFactory', 'InstanceLoader', 'RoutesResolver', 'RouterExplorer', 'WebSocketsController', 'NestApplication']);

/**
 * The standalone app's logger: Nest's start-up chatter goes to debug level (not shown by
 * default), so the advertised URL and its QR code are the last thing a person sees at START.
 */
export class StackcastLogger extends ConsoleLogger {
  override log(message: unknown, ...optionalParams: unknown[]): void {
    const context = optionalParams.at(-1) ?? this.context;
    if (typeof context === 'string' && STARTUP_CONTEXTS.has(context)) {
      this.debug(message, ...optionalParams);
      return;
    }
    super.log(message, ...optionalParams);
  }
}
