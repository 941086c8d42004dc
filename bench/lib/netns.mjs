// A private network namespace whose loopback is shaped like a shared Wi-Fi link: MTU 1500
// and a token bucket (tbf; netem is not available here). Traffic from or to PUBLISHER_ADDRESS
// bypasses the bucket: the stacker writes to the laptop itself, not over the radio.
import { spawnSync } from 'node:child_process';

/** Source address of the bench's own publishes (PUT /api/image), left unshaped. */
export const PUBLISHER_ADDRESS = '127.0.0.2';

function run(args, { allowFail = false } = {}) {
  const r = spawnSync(args[0], args.slice(1), { encoding: 'utf8', timeout: 10_000 });
  if (!allowFail && r.status !== 0) {
    throw new Error(`${args.join(' ')} failed (${r.status ?? r.error?.message}): ${(r.stderr || r.stdout).trim()}`);
  }
  return r;
}

export function isRoot() {
  return process.getuid?.() === 0;
}

/** Whether `ip netns` and `tc` can be used here (root, iproute2 installed). */
export function netnsSupport() {
  if (!isRoot()) {
    return 'needs root for ip netns/tc';
  }
  for (const bin of ['ip', 'tc']) {
    if (spawnSync(bin, ['-V'], { encoding: 'utf8' }).error) {
      return `needs ${bin} (apt-get install iproute2)`;
    }
  }
  return undefined;
}

/**
 * Creates namespace `name` and shapes its loopback: an htb root (prio is not built into
 * this kernel) whose class 1:10 takes the publisher's traffic unshaped and 1:20, everything
 * else, ends in a tbf of `rateMbit`. Returns the qdisc listing for the log.
 */
export function createShapedNetns(name, { rateMbit, burstKb = 32, latencyMs = 100 }) {
  run(['ip', 'netns', 'add', name]);
  const inNs = (...args) => run(['ip', 'netns', 'exec', name, ...args]);
  inNs('ip', 'link', 'set', 'lo', 'mtu', '1500', 'up');
  inNs('tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'handle', '1:', 'htb', 'default', '20');
  for (const cls of ['1:10', '1:20']) {
    inNs('tc', 'class', 'add', 'dev', 'lo', 'parent', '1:', 'classid', cls, 'htb', 'rate', '10gbit', 'quantum', '60000');
  }
  inNs('tc', 'qdisc', 'add', 'dev', 'lo', 'parent', '1:20', 'handle', '20:', 'tbf', 'rate', `${rateMbit}mbit`, 'burst', `${burstKb}kb`, 'latency', `${latencyMs}ms`);
  for (const dir of ['src', 'dst']) {
    inNs('tc', 'filter', 'add', 'dev', 'lo', 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32', 'match', 'ip', dir, `${PUBLISHER_ADDRESS}/32`, 'flowid', '1:10');
  }
  return inNs('tc', 'qdisc', 'show', 'dev', 'lo').stdout.trim();
}

/** PIDs of the processes still in namespace `name` (all started by the bench). */
export function netnsPids(name) {
  const r = run(['ip', 'netns', 'pids', name], { allowFail: true });
  return r.status === 0 ? r.stdout.split(/\s+/).filter(Boolean).map(Number) : [];
}

/** Kills what is left in the namespace (by PID) and deletes it; safe to call twice. */
export function deleteNetns(name) {
  for (const pid of netnsPids(name)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  const exists = run(['ip', 'netns', 'list'], { allowFail: true }).stdout.split('\n').some((l) => l.split(' ')[0] === name);
  if (exists) {
    run(['ip', 'netns', 'del', name], { allowFail: true });
  }
}
