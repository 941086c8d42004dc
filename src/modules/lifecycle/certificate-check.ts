import { Logger } from '@nestjs/common';
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';

/** The DNS names and IP addresses a certificate is for (its subjectAltName, else its CN). */
export function certificateNames(x509: X509Certificate): string[] {
  const alt = x509.subjectAltName;
  if (alt !== undefined && alt !== '') {
    return alt.split(', ').map((entry) => entry.replace(/^(DNS|IP Address):/, ''));
  }
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(x509.subject)?.[1];
  return cn === undefined ? [] : [cn];
}

/**
 * What makes phones refuse `certPem` when they open `host` at `now`: one sentence each
 * (expired, not yet valid, or not naming `host`); empty when nothing is wrong.
 */
export function certificateProblems(certPem: string, host: string, now: Date = new Date()): string[] {
  const x509 = new X509Certificate(certPem);
  const problems: string[] = [];
  const notAfter = new Date(x509.validTo);
  const notBefore = new Date(x509.validFrom);
  if (notAfter.getTime() < now.getTime()) {
    problems.push(`the certificate expired on ${notAfter.toISOString()}`);
  } else if (notBefore.getTime() > now.getTime()) {
    problems.push(`the certificate is not valid before ${notBefore.toISOString()}`);
  }
  const covered = isIP(host) !== 0 ? x509.checkIP(host) !== undefined : x509.checkHost(host) !== undefined;
  if (!covered) {
    problems.push(`the certificate names ${certificateNames(x509).join(', ') || 'no host'}, which do not include the advertised address ${host}`);
  }
  return problems;
}

/** Logs one warning per {@link certificateProblems} at START; browsers and phones will refuse the page. */
export function warnAboutCertificate(certPem: string, host: string, logger: Pick<Logger, 'warn'> = new Logger('Tls')): string[] {
  const problems = certificateProblems(certPem, host);
  for (const problem of problems) {
    logger.warn(`${problem}: browsers will refuse https://${host.includes(':') ? `[${host}]` : host}/ (TLS_CERT_FILE)`);
  }
  return problems;
}
