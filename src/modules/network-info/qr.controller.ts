import { BadRequestException, Controller, Get, Header, NotFoundException, Query } from '@nestjs/common';
import { ApiOperation, ApiProduces, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import { NetworkInfoService } from './network-info.service.js';

/** `GET /qr.svg`: the advertised URL as a QR code, for phones to scan from the screen; `GET /qr-wifi.svg`: the hotspot's. */
@ApiTags('viewer')
@Controller()
export class QrController {
  constructor(private readonly networkInfo: NetworkInfoService) {}

  /**
   * Without a query: the advertised URL. With `?address=<candidate>`: the URL
   * on that address, for when the advertised one is not on the phones' network.
   */
  @Get('qr.svg')
  @ApiOperation({ summary: 'A QR code of the advertised URL' })
  @ApiProduces('image/svg+xml')
  @ApiQuery({ name: 'address', required: false, description: "One of this machine's IPv4 addresses: the URL on that address instead" })
  @ApiResponse({ status: 400, description: 'Not a current address of this machine' })
  @Header('Content-Type', 'image/svg+xml')
  // The advertised address follows the interfaces; a cached code could point at a dead one.
  @Header('Cache-Control', 'no-cache')
  qr(@Query('address') address: unknown): Promise<string> {
    const advertisement = this.networkInfo.current();
    if (address === undefined || address === '') {
      return this.networkInfo.qrSvg(advertisement.url);
    }
    // The candidate's own URL carries the bound port, even when PUBLIC_URL (another port, or none) is advertised.
    const candidate = typeof address === 'string' ? this.networkInfo.candidate(address) : undefined;
    if (candidate === undefined) {
      const known = advertisement.addresses.map((entry) => entry.address).join(', ') || 'none';
      throw new BadRequestException(
        `address must be one of this machine's current IPv4 addresses: ${known} (got ${JSON.stringify(address)})`,
      );
    }
    return this.networkInfo.qrSvg(candidate.url);
  }

  /** The QR code that joins the hotspot (`WIFI_SSID`, `WIFI_PASSWORD`): step 1 before the page's code. */
  @Get('qr-wifi.svg')
  @ApiOperation({ summary: "A QR code that joins the hotspot (WIFI_SSID): scanned before the page's" })
  @ApiProduces('image/svg+xml')
  @ApiResponse({ status: 404, description: 'No WIFI_SSID is set' })
  @Header('Content-Type', 'image/svg+xml')
  // It holds the password: kept out of shared caches.
  @Header('Cache-Control', 'private, no-cache')
  wifi(): Promise<string> {
    const text = this.networkInfo.wifiQrText();
    if (text === undefined) {
      throw new NotFoundException('no Wi-Fi QR code: WIFI_SSID (the hotspot\'s name) is not set');
    }
    return this.networkInfo.qrSvg(text);
  }
}
