/** The characters the `WIFI:` format reserves; each is written with a backslash before it. */
const RESERVED = /[\\;,:"]/g;

/** `value` escaped for a field of the `WIFI:` format. */
export function escapeWifiField(value: string): string {
  return value.replace(RESERVED, (c) => `\\${c}`);
}

/**
 * The text of a QR code that joins a Wi-Fi network, in the format phones read
 * (`WIFI:T:WPA;S:<ssid>;P:<password>;;`, `T:nopass` for an open network).
 */
export function wifiQrText(ssid: string, password?: string): string {
  if (password === undefined) {
    return `WIFI:T:nopass;S:${escapeWifiField(ssid)};;`;
  }
  return `WIFI:T:WPA;S:${escapeWifiField(ssid)};P:${escapeWifiField(password)};;`;
}
