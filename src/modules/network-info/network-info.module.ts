import { Module } from '@nestjs/common';
import { NetworkInfoService } from './network-info.service.js';
import { networkInterfacesProvider } from './network-interfaces.provider.js';
import { QrController } from './qr.controller.js';

/** The machine's IPv4 candidates, the advertised URL and its QR code (`GET /qr.svg`). */
@Module({
  providers: [networkInterfacesProvider, NetworkInfoService],
  controllers: [QrController],
  exports: [NetworkInfoService],
})
export class NetworkInfoModule {}
