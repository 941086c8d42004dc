import { describe, expect, it } from 'vitest';
import { unknownVariableWarnings } from './unknown-variables.js';

describe('unknownVariableWarnings', () => {
  it('names the likely intended variable of a misspelled one, one line each', () => {
    expect(unknownVariableWarnings({ CONTROLTOKEN: 'a-secret-value-0123456789', TLS_SELFSIGNED: 'true', PORT: '8000' })).toEqual([
      'CONTROLTOKEN is not a stackcast setting and is ignored: did you mean CONTROL_TOKEN?',
      'TLS_SELFSIGNED is not a stackcast setting and is ignored: did you mean TLS_SELF_SIGNED?',
    ]);
  });

  it.each([
    ['WATCH_PAHT', 'WATCH_PATH'],
    ['work_folder', 'WORK_FOLDER'],
    ['JPEG_QUALTY', 'JPEG_QUALITY'],
    ['MAX_VIEWER', 'MAX_VIEWERS'],
    ['DISPLAY_ADDRESS', 'DISPLAYED_ADDRESS'],
    ['PUBLICURL', 'PUBLIC_URL'],
    ['STRECH', 'STRETCH'],
  ])('%s: did you mean %s?', (given, meant) => {
    expect(unknownVariableWarnings({ [given]: 'x' })).toEqual([`${given} is not a stackcast setting and is ignored: did you mean ${meant}?`]);
  });

  it('a variable with one of our prefixes lists the settings that have it', () => {
    expect(unknownVariableWarnings({ REDIS_PASSWORD: 'hunter2' })).toEqual([
      'REDIS_PASSWORD is not a stackcast setting and is ignored; the settings starting REDIS_ are REDIS_URL, REDIS_NAMESPACE',
    ]);
  });

  it('never prints a value', () => {
    const lines = unknownVariableWarnings({ CONTROLTOKEN: 'a-secret-value-0123456789', REDIS_PASSWORD: 'hunter2-hunter2' }).join('\n');
    expect(lines).not.toContain('a-secret-value');
    expect(lines).not.toContain('hunter2');
  });

  it('leaves the usual environment of a shell, a container and Node alone', () => {
    const usual = ['PATH', 'HOME', 'USER', 'SHELL', 'TERM', 'LANG', 'PWD', 'OLDPWD', 'HOSTNAME', 'SHLVL', 'LOGNAME', 'TZ', 'NODE_ENV', 'NODE_VERSION', 'YARN_VERSION', 'NO_COLOR', 'DISPLAY', 'EDITOR', 'MAIL', 'TMPDIR', 'COLORTERM', 'DEBUG', 'HOST', 'npm_config_cache', 'npm_lifecycle_event', 'SSL_CERT_FILE', 'SSL_CERT_DIR', 'NODE_OPTIONS', 'NODE_EXTRA_CA_CERTS', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'XDG_RUNTIME_DIR', 'DBUS_SESSION_BUS_ADDRESS', 'SSH_AUTH_SOCK', 'KUBERNETES_PORT', 'container'];
    expect(unknownVariableWarnings(Object.fromEntries(usual.map((name) => [name, 'x'])))).toEqual([]);
  });
});
