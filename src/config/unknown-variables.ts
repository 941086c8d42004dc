import { ENVIRONMENT_VARIABLE_NAMES } from './env.validation.js';

/** Prefixes only stackcast's settings use here: a variable with one of them is meant for us. */
const OUR_PREFIXES = ['STACKCAST_', 'TLS_', 'WATCH_', 'REDIS_', 'DEMO_', 'WEB_', 'CONTROL_', 'DISPLAYED_', 'METRICS_', 'UPGRADE', 'KEEP_', 'JPEG_', 'LOG_', 'UPSTREAM_', 'SCOPE_'];

/** The name without case, `_` or `-`: CONTROLTOKEN and control-token are CONTROL_TOKEN. */
function normalised(name: string): string {
  return name.toUpperCase().replace(/[^A-Z0-9]/g, '');
}

/** Levenshtein distance, with an adjacent swap counted as one edit (PAHT -> PATH). */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/** Edits a misspelling of `known` may have: none for very short names, then one, two from 8 letters. */
function tolerance(known: string): number {
  return known.length >= 8 ? 2 : known.length >= 4 ? 1 : 0;
}

/**
 * The known setting `name` most likely stands for, if it is close to one. A misspelling
 * keeps the first letter: SSL_CERT_FILE (OpenSSL's) is not a TLS_CERT_FILE.
 */
function closest(name: string, known: readonly string[]): string | undefined {
  const given = normalised(name);
  let best: { name: string; distance: number } | undefined;
  for (const candidate of known) {
    const target = normalised(candidate);
    const distance = editDistance(given, target);
    const likely = distance === 0 || (given[0] === target[0] && distance <= tolerance(target));
    if (likely && (best === undefined || distance < best.distance)) {
      best = { name: candidate, distance };
    }
  }
  return best?.name;
}

/**
 * One warning line per variable in `env` that is not a setting but looks like one: close
 * to a known name, or with a prefix only settings use. Names only, never values (a
 * misspelled CONTROL_TOKEN holds a secret).
 */
export function unknownVariableWarnings(env: Record<string, unknown>, known: readonly string[] = ENVIRONMENT_VARIABLE_NAMES): string[] {
  const lines: string[] = [];
  for (const name of Object.keys(env).sort()) {
    if (known.includes(name)) {
      continue;
    }
    const meant = closest(name, known);
    if (meant !== undefined) {
      lines.push(`${name} is not a stackcast setting and is ignored: did you mean ${meant}?`);
      continue;
    }
    const prefix = OUR_PREFIXES.find((p) => name.toUpperCase().startsWith(p));
    if (prefix !== undefined) {
      const family = known.filter((k) => k.startsWith(prefix));
      lines.push(
        `${name} is not a stackcast setting and is ignored` +
          (family.length > 0 ? `; the settings starting ${prefix} are ${family.join(', ')}` : ''),
      );
    }
  }
  return lines;
}
