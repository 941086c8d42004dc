import { generate } from 'selfsigned';
import { describe, expect, it } from 'vitest';
import { certificateProblems, warnAboutCertificate } from './certificate-check.js';

const DAY = 24 * 3600 * 1000;

async function certificate(names: string[], from: Date, to: Date): Promise<string> {
  const pems = await generate([{ name: 'commonName', value: 'test' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: from,
    notAfterDate: to,
    extensions: [{ name: 'subjectAltName', altNames: names.map((n) => (/^[\d.]+$/.test(n) ? { type: 7, ip: n } : { type: 2, value: n })) }],
  });
  return pems.cert;
}

describe('certificateProblems', () => {
  const now = new Date();
  const valid = { from: new Date(now.getTime() - DAY), to: new Date(now.getTime() + 30 * DAY) };

  it('finds nothing wrong with a current certificate that names the advertised address or host', async () => {
    const cert = await certificate(['sky.local', '192.168.1.20'], valid.from, valid.to);
    expect(certificateProblems(cert, '192.168.1.20', now)).toEqual([]);
    expect(certificateProblems(cert, 'sky.local', now)).toEqual([]);
  });

  it('names the hosts of a certificate for another host', async () => {
    const cert = await certificate(['other.example', '10.0.0.9'], valid.from, valid.to);
    expect(certificateProblems(cert, '192.168.1.20', now)).toEqual([
      'the certificate names other.example, 10.0.0.9, which do not include the advertised address 192.168.1.20',
    ]);
  });

  it('gives the date of an expired certificate, and of one not valid yet', async () => {
    const ended = new Date(now.getTime() - 2 * DAY);
    const expired = await certificate(['192.168.1.20'], new Date(now.getTime() - 90 * DAY), ended);
    expect(certificateProblems(expired, '192.168.1.20', now)).toEqual([`the certificate expired on ${new Date(Math.floor(ended.getTime() / 1000) * 1000).toISOString()}`]);
    const early = await certificate(['192.168.1.20'], new Date(now.getTime() + 5 * DAY), new Date(now.getTime() + 50 * DAY));
    expect(certificateProblems(early, '192.168.1.20', now)[0]).toMatch(/^the certificate is not valid before \d{4}-/);
  });

  it('logs one warning per problem, naming the variable', async () => {
    const cert = await certificate(['other.example'], new Date(now.getTime() - 90 * DAY), new Date(now.getTime() - DAY));
    const lines: string[] = [];
    expect(warnAboutCertificate(cert, '192.168.1.20', { warn: (line: string) => lines.push(line) })).toHaveLength(2);
    expect(lines).toHaveLength(2);
    expect(lines.every((l) => l.includes('https://192.168.1.20/') && l.includes('TLS_CERT_FILE'))).toBe(true);
  });
});
