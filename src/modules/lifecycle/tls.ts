import { Logger } from '@nestjs/common';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { makeFolder } from '../../common/make-folder.js';
import { ConfigValidationError } from '../../config/env.validation.js';
import type { TlsSource } from '../../config/environment-options.js';

export type { TlsSource };

/** What `https.createServer` (Nest's `httpsOptions`) takes, and the fingerprint to show people. */
export interface TlsMaterial {
  key: string;
  cert: string;
  /** SHA-256 fingerprint of the certificate, `AB:CD:...` */
  fingerprint: string;
}

export const SELF_SIGNED_CERT_FILE = 'self-signed-cert.pem';
export const SELF_SIGNED_KEY_FILE = 'self-signed-key.pem';
/** Apple devices refuse server certificates valid for longer. */
const SELF_SIGNED_VALIDITY_DAYS = 825;
/** A kept certificate this close to its end is made again. */
const RENEW_BEFORE_MS = 7 * 24 * 3600 * 1000;

const logger = new Logger('Tls');

/**
 * Loads (or, for a self-signed source, makes once and keeps) the certificate and key,
 * and checks that they belong together. A problem is a {@link ConfigValidationError}
 * with one line naming the variable.
 */
export async function loadTls(source: TlsSource): Promise<TlsMaterial> {
  const material = source.kind === 'files' ? await fromFiles(source.certFile, source.keyFile) : await selfSigned(source.folder);
  logger.log(
    `HTTPS with ${source.kind === 'files' ? `the certificate ${source.certFile}` : 'a self-signed certificate'}; SHA-256 fingerprint ${material.fingerprint}`,
  );
  return material;
}

async function fromFiles(certFile: string, keyFile: string): Promise<TlsMaterial> {
  const cert = await readPem('TLS_CERT_FILE', certFile);
  const key = await readPem('TLS_KEY_FILE', keyFile);
  return checkedPair(cert, key, {
    cert: `TLS_CERT_FILE=${JSON.stringify(certFile)} is invalid: expected a PEM certificate`,
    key: `TLS_KEY_FILE=${JSON.stringify(keyFile)} is invalid: expected an unencrypted PEM private key`,
    mismatch: `TLS_KEY_FILE=${JSON.stringify(keyFile)} is invalid: it is not the private key of the certificate in TLS_CERT_FILE=${JSON.stringify(certFile)}`,
  });
}

async function readPem(variable: string, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigValidationError([`${variable}=${JSON.stringify(path)} is invalid: cannot read it (${code})`]);
  }
}

function checkedPair(cert: string, key: string, lines: { cert: string; key: string; mismatch: string }): TlsMaterial {
  let x509: X509Certificate;
  let privateKey: KeyObject;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    throw new ConfigValidationError([lines.cert]);
  }
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw new ConfigValidationError([lines.key]);
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw new ConfigValidationError([lines.mismatch]);
  }
  return { key, cert, fingerprint: x509.fingerprint256 };
}

/** The kept self-signed pair, or a new one when there is none, it is unreadable or it ends soon. */
async function selfSigned(folder: string): Promise<TlsMaterial> {
  const certPath = join(folder, SELF_SIGNED_CERT_FILE);
  const keyPath = join(folder, SELF_SIGNED_KEY_FILE);
  const kept = await keptPair(certPath, keyPath);
  if (kept !== undefined) {
    const missing = machineNames().filter((name) => !kept.x509.checkHost(name) && !kept.x509.checkIP(name));
    if (missing.length > 0) {
      logger.warn(
        `the kept self-signed certificate does not name ${missing.join(', ')}; browsers will warn there. Delete ${certPath} to make a new one (its fingerprint changes)`,
      );
    }
    return kept.material;
  }
  const names = machineNames();
  const now = new Date();
  const pems = await generate([{ name: 'commonName', value: 'stackcast' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(now.getTime() - 3600 * 1000),
    notAfterDate: new Date(now.getTime() + SELF_SIGNED_VALIDITY_DAYS * 24 * 3600 * 1000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: names.map((name) => (isIpAddress(name) ? { type: 7, ip: name } : { type: 2, value: name })) },
    ],
  });
  try {
    await makeFolder(folder);
    await writeBeside(keyPath, pems.private, 0o600);
    await writeBeside(certPath, pems.cert, 0o644);
  } catch (err) {
    throw new ConfigValidationError([`TLS_SELF_SIGNED=true is invalid here: cannot keep the certificate in ${folder} (${(err as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
  const x509 = new X509Certificate(pems.cert);
  logger.log(`made a self-signed certificate for ${names.join(', ')}, kept in ${folder}`);
  return { key: pems.private, cert: pems.cert, fingerprint: x509.fingerprint256 };
}

async function keptPair(certPath: string, keyPath: string): Promise<{ material: TlsMaterial; x509: X509Certificate } | undefined> {
  let cert: string;
  let key: string;
  try {
    [cert, key] = await Promise.all([readFile(certPath, 'utf8'), readFile(keyPath, 'utf8')]);
  } catch {
    return undefined;
  }
  try {
    const x509 = new X509Certificate(cert);
    if (!x509.checkPrivateKey(createPrivateKey(key)) || Date.parse(x509.validTo) - Date.now() < RENEW_BEFORE_MS) {
      logger.warn(`the kept self-signed certificate ${certPath} ends soon or does not match its key: making a new one`);
      return undefined;
    }
    return { material: { key, cert, fingerprint: x509.fingerprint256 }, x509 };
  } catch {
    logger.warn(`the kept self-signed certificate ${certPath} is unreadable: making a new one`);
    return undefined;
  }
}

/** Key first, then the certificate: a crash in between leaves a mismatch, which is made again. */
async function writeBeside(path: string, content: string, mode: number): Promise<void> {
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, content, { mode });
  await rename(temp, path);
}

/** localhost, this machine's host names and every IP address it has now. */
function machineNames(): string[] {
  const names = new Set<string>(['localhost', '127.0.0.1', '::1']);
  const host = hostname();
  if (host !== '' && !isIpAddress(host)) {
    names.add(host);
    if (!host.includes('.')) {
      names.add(`${host}.local`);
    }
  }
  for (const entries of Object.values(networkInterfaces())) {
    for (const entry of entries ?? []) {
      // Link-local IPv6 addresses carry a zone and cannot be named in a certificate.
      if (!(entry.family === 'IPv6' && entry.address.toLowerCase().startsWith('fe80'))) {
        names.add(entry.address);
      }
    }
  }
  return [...names];
}

function isIpAddress(name: string): boolean {
  return isIP(name) !== 0;
}
