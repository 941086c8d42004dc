/** What a version shows, as kept beside its pyramid (`about.json`). */
export interface VersionAbout {
  object: string | null;
  stackSize: number;
  /** ISO 8601 */
  at: string;
}

/** Characters no file system or browser takes in a name, and whitespace. */
const UNSAFE = /[\p{C}\\/:*?"<>|;\s]+/gu;

/**
 * `Content-Disposition` of a version's full image: `<object or stackcast>-<date>-stack<N>.jpg`,
 * the date being the server's local date of the version. A name that is not plain ASCII
 * also goes as RFC 6266 / RFC 8187 `filename*` (UTF-8), with an ASCII `filename` fallback.
 */
export function downloadDisposition(about: VersionAbout | undefined, version: number): string {
  const at = about ? new Date(about.at) : undefined;
  const date = at && !Number.isNaN(at.getTime()) ? localDate(at) : undefined;
  const object = about?.object?.replace(UNSAFE, '_').replace(/^[._]+|_+$/g, '') || 'stackcast';
  const name = `${object}-${date ?? `v${version}`}-stack${about?.stackSize ?? 0}.jpg`;
  const ascii = name
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .replace(/[^\x20-\x7e]/g, '_');
  if (ascii === name) {
    return `attachment; filename="${name}"`;
  }
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeRfc8187(name)}`;
}

function localDate(at: Date): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}`;
}

/** RFC 8187 value characters: attr-char stays, everything else percent-encoded UTF-8. */
function encodeRfc8187(value: string): string {
  return encodeURIComponent(value).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
