import { isIPv4 } from 'node:net';
import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import QRCode from 'qrcode';
import { guarded } from '../../common/guarded.js';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';
import { type AddressClass, chooseDisplayed, classifyIPv4, rankCandidates } from './address-ranking.js';
import { NETWORK_INTERFACES, type NetworkInterfacesSource } from './network-interfaces.provider.js';
import { wifiQrText } from './wifi-qr.js';

/** One of the machine's IPv4 addresses, with the URL the viewer answers on there. */
export interface AdvertisedAddress {
  interface: string;
  address: string;
  /** `http://<address>:<port>` (`https://` when the server speaks TLS). */
  url: string;
  class: AddressClass;
  /** The interface looks virtual (container bridge, VPN, VM adapter). */
  virtual: boolean;
}

/**
 * What the service tells people to open: shown in the log, as a QR code, and
 * in `/status`.
 */
export interface Advertisement {
  /** The advertised URL: `PUBLIC_URL` when set, otherwise `http://<displayedAddress>:<port>`. */
  url: string;
  /** Host part of `url` (without IPv6 brackets). */
  displayedAddress: string;
  /**
   * True when the advertised host is loopback: only this machine can open the
   * URL. The service keeps running; this is reported as state, not thrown.
   */
  limitedAccess: boolean;
  /** Every IPv4 candidate, best first, so a user can pick another one (`/qr.svg?address=`). */
  addresses: AdvertisedAddress[];
  /** Problems worth telling the user (ignored setting, loopback only); each one is logged. */
  warnings: string[];
}

// Advertised when the machine has no IPv4 address at all, so there is still a URL to print.
const FALLBACK_ADDRESS = '127.0.0.1';

/** Works out the advertised URL from the interfaces and the displayed-address settings, and draws its QR codes. */
@Injectable()
export class NetworkInfoService implements OnModuleDestroy {
  private readonly logger = new Logger(NetworkInfoService.name);
  private cached: Advertisement | undefined;
  private port: number | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private scheme: 'http' | 'https' = 'http';

  constructor(
    @Inject(IMAGE_SERVER_OPTIONS) private readonly options: ImageServerOptions,
    @Inject(NETWORK_INTERFACES) private readonly source: NetworkInterfacesSource,
  ) {}

  /**
   * Reads the interfaces again and builds the advertisement for `port` (the
   * port actually bound, which differs from the option when it is 0). The
   * result is cached for {@link current}; its warnings are logged. `scheme` is `https`
   * when the server speaks TLS.
   */
  advertise(port: number, scheme: 'http' | 'https' = this.scheme): Advertisement {
    this.scheme = scheme;
    const advertisement = this.build(port);
    for (const message of advertisement.warnings) {
      this.logger.warn(message);
    }
    this.cached = advertisement;
    this.port = port;
    this.startRefresh();
    return advertisement;
  }

  /**
   * Reads the interfaces again (every `addressRefreshMs` once advertised): a laptop that
   * changed networks gets its new address in `/status` and the QR code. Logs the change,
   * a warning when the advertised address is gone, and only warnings not already given.
   */
  refresh(): Advertisement | undefined {
    const previous = this.cached;
    if (this.port === undefined || previous === undefined) {
      return previous;
    }
    const next = this.build(this.port);
    const known = new Set(previous.warnings);
    for (const message of next.warnings.filter((w) => !known.has(w))) {
      this.logger.warn(message);
    }
    const stillThere = next.addresses.some((entry) => entry.address === previous.displayedAddress);
    if (!stillThere && previous.addresses.some((entry) => entry.address === previous.displayedAddress)) {
      this.logger.warn(`the advertised address ${previous.displayedAddress} is gone from this machine's interfaces`);
    }
    if (next.url !== previous.url) {
      this.logger.log(`the network changed: now advertising ${next.url} (was ${previous.url})`);
    }
    this.cached = next;
    return next;
  }

  onModuleDestroy(): void {
    clearInterval(this.refreshTimer);
    this.refreshTimer = undefined;
  }

  private startRefresh(): void {
    if (this.refreshTimer !== undefined || this.options.addressRefreshMs <= 0) {
      return;
    }
    // Reading the interfaces opens a socket: with the fd table full it throws EMFILE; the last advertisement stays.
    this.refreshTimer = setInterval(guarded(this.logger, 'could not read the network interfaces', () => this.refresh()), this.options.addressRefreshMs);
    this.refreshTimer.unref();
  }

  private build(port: number): Advertisement {
    const scheme = this.scheme;
    const candidates = rankCandidates(this.source.read());
    const addresses = candidates.map((candidate) => ({ ...candidate, url: `${scheme}://${candidate.address}:${port}` }));
    const warnings: string[] = [];

    const { candidate, warning } = chooseDisplayed(candidates, this.options.displayedAddress);
    if (warning !== undefined) {
      warnings.push(warning);
    }
    const publicUrl = this.publicUrl(warnings);
    let displayedAddress = candidate?.address ?? FALLBACK_ADDRESS;
    let url = `${scheme}://${displayedAddress}:${port}`;
    if (publicUrl !== undefined) {
      url = publicUrl.url;
      displayedAddress = publicUrl.host;
    } else if (candidate === undefined) {
      warnings.push(`No IPv4 address found on any network interface; advertising ${url}.`);
    }

    const limitedAccess = isLoopbackHost(displayedAddress);
    if (limitedAccess) {
      warnings.push(
        `Limited access: ${url} is a loopback address, only this machine can open it. ` +
          'Connect this machine to the network the phones use (or turn on its Wi-Fi hotspot), ' +
          'or set DISPLAYED_ADDRESS=ip:<address> or PUBLIC_URL to an address the phones can reach.',
      );
    }

    if (this.options.scopeId !== undefined) {
      // A scope's viewer is at /s/<id>/ of the same service.
      const path = `/s/${this.options.scopeId}/`;
      const scoped = addresses.map((a) => ({ ...a, url: `${a.url.replace(/\/$/, '')}${path}` }));
      return { url: `${url.replace(/\/$/, '')}${path}`, displayedAddress, limitedAccess, addresses: scoped, warnings: [...new Set(warnings)] };
    }
    return { url, displayedAddress, limitedAccess, addresses, warnings: [...new Set(warnings)] };
  }

  /** The last advertisement, or a fresh one for the configured port when none was made yet. */
  current(): Advertisement {
    return this.cached ?? this.advertise(this.options.port);
  }

  /** The current advertisement's candidate with this IPv4 address, if any. */
  candidate(address: string): AdvertisedAddress | undefined {
    return this.current().addresses.find((entry) => entry.address === address);
  }

  /** Whether `address` is one of the current advertisement's IPv4 candidates. */
  isCandidate(address: string): boolean {
    return this.candidate(address) !== undefined;
  }

  /** The QR code of `url` as an SVG document. */
  qrSvg(url: string): Promise<string> {
    return QRCode.toString(url, { type: 'svg', margin: 2, errorCorrectionLevel: 'M' });
  }

  /** The hotspot's name when `wifiSsid` is set (the password is never handed out). */
  get wifiSsid(): string | undefined {
    return this.options.wifiSsid;
  }

  /** The text of the QR code that joins the hotspot, or undefined without `wifiSsid`. Holds the password. */
  wifiQrText(): string | undefined {
    const ssid = this.options.wifiSsid;
    return ssid === undefined ? undefined : wifiQrText(ssid, this.options.wifiPassword);
  }

  /**
   * The QR code of `url` drawn with block characters, for the terminal. Without colour
   * (`NO_COLOR`, or a log that is not a TTY, as in a container) it uses plain characters
   * and no ANSI escapes, drawn for a dark background.
   */
  qrTerminal(url: string, colour = process.stdout.isTTY === true && !process.env.NO_COLOR): Promise<string> {
    if (!colour) {
      return QRCode.toString(url, { type: 'utf8', color: { dark: '#ffffff', light: '#000000' } });
    }
    return QRCode.toString(url, { type: 'terminal', small: true });
  }

  /** `PUBLIC_URL` as given and its host, or undefined when unset or unusable (then a warning says why). */
  private publicUrl(warnings: string[]): { url: string; host: string } | undefined {
    const url = this.options.publicUrl;
    if (url === undefined || url === '') {
      return undefined;
    }
    // The standalone app validates PUBLIC_URL; an embedding app may pass anything.
    if (!URL.canParse(url)) {
      warnings.push(`PUBLIC_URL=${url} is not an absolute URL; ignored.`);
      return undefined;
    }
    const parsed = new URL(url);
    // WHATWG URL keeps IPv6 hosts bracketed ("[::1]"); the displayed address should not be.
    const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
    if (parsed.username === '' && parsed.password === '') {
      return { url, host };
    }
    warnings.push('PUBLIC_URL holds credentials (user:password@); they are left out of the advertised URL.');
    return { url: withoutCredentials(url), host };
  }
}

/** `url` without its `user:password@`, otherwise as written. */
export function withoutCredentials(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, '$1');
}

function isLoopbackHost(host: string): boolean {
  const lower = host.toLowerCase();
  return (
    lower === 'localhost' ||
    lower.endsWith('.localhost') ||
    lower === '::1' ||
    (isIPv4(lower) && classifyIPv4(lower) === 'loopback')
  );
}
