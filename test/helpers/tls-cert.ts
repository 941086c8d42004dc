import { request } from 'node:https';
import { generate } from 'selfsigned';

export interface TestCertificate {
  key: string;
  cert: string;
}

/** A fresh certificate for localhost and 127.0.0.1, its own CA (pass `cert` as `ca`). */
export async function makeTestCertificate(commonName = 'stackcast-test'): Promise<TestCertificate> {
  const pems = await generate([{ name: 'commonName', value: commonName }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] },
    ],
  });
  return { key: pems.private, cert: pems.cert };
}

/** A GET over HTTPS that trusts only `ca` (the global fetch cannot be given a CA). */
export function httpsGet(url: string, ca: string): Promise<{ status: number; body: string; peerFingerprint: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, method: 'GET' }, (res) => {
      const chunks: Buffer[] = [];
      const peer = (res.socket as import('node:tls').TLSSocket).getPeerX509Certificate?.();
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), peerFingerprint: peer?.fingerprint256 ?? '' }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
