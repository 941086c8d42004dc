import os from 'node:os';
import type { Provider } from '@nestjs/common';

/** Injection token of the {@link NetworkInterfacesSource}. */
export const NETWORK_INTERFACES = 'STACKCAST_NETWORK_INTERFACES';

/** The shape `os.networkInterfaces()` returns: interface name -> its addresses. */
export type InterfaceTable = NodeJS.Dict<os.NetworkInterfaceInfo[]>;

/**
 * Where the machine's network interfaces come from. A thin wrapper around
 * `os.networkInterfaces()` so services can be tested with fed tables instead
 * of the real network, without mocking `node:os`.
 */
export interface NetworkInterfacesSource {
  /** The interfaces as they are now; read again on every call (Wi-Fi and hotspots come and go). */
  read(): InterfaceTable;
}

/** The real source, reading the operating system's interfaces. */
export const networkInterfacesProvider: Provider = {
  provide: NETWORK_INTERFACES,
  useValue: { read: () => os.networkInterfaces() } satisfies NetworkInterfacesSource,
};
