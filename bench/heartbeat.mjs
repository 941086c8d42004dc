#!/usr/bin/env node
// The heartbeat over many viewers: how long one beat (a ping to every socket) holds the event
// loop, for the SocketHeartbeat of two builds, one after the other in the same process. N real
// WebSocket connections over loopback (their clients in a child process, which answers the
// pings), a beat every 500 ms; prints, per build, the median and longest stretch of pings with
// no turn of the event loop between them, and the time a beat took from its first ping to its last.
//
//   node bench/heartbeat.mjs [--sockets 5000] [--beats 10] [--baseline <git ref>] [--dist <dir>]
//   --baseline  the build to compare with (default main; built once under bench/.build-baseline)
//   --dist      this build (default dist/: `npm run build` first)
import { fork } from 'node:child_process';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import WebSocket, { WebSocketServer } from 'ws';
import { args, logger, option } from './lib/cli.mjs';
import { buildBaseline } from './lib/baseline.mjs';
import { median } from './lib/stats.mjs';

const SOCKETS = Number(option('--sockets') ?? 5000);
const BEATS = Number(option('--beats') ?? 10);
const INTERVAL_MS = 500;
const log = logger('heartbeat');

if (args[0] === '--clients') {
  // The child: SOCKETS clients of the server on port args[1] (ws answers pings by itself).
  const clients = [];
  for (let i = 0; i < SOCKETS; i++) {
    const ws = new WebSocket(`ws://127.0.0.1:${args[1]}`, { perMessageDeflate: false });
    clients.push(ws);
    await new Promise((ok, fail) => ws.once('open', ok).once('error', fail));
  }
  process.send('ready');
  process.on('disconnect', () => process.exit(0));
} else {
  await main();
}

/** Splits ping times (ms) into runs wherever two pings are more than `gapMs` apart. */
function runs(times, gapMs) {
  const out = [];
  for (const t of times) {
    const run = out.at(-1);
    if (run && t - run.at(-1) <= gapMs) {
      run.push(t);
    } else {
      out.push([t]);
    }
  }
  return out;
}

/**
 * One build's heartbeat over `sockets` (the server's side of each connection), BEATS beats:
 * per beat, the longest run of pings with no turn of the event loop between them (pings
 * under 1 ms apart: conservative, a fast turn joins two slices) and the beat's span.
 */
async function measure(dist, sockets) {
  const { SocketHeartbeat } = await import(pathToFileURL(resolve(dist, 'common/socket-heartbeat.js')).href);
  const times = [];
  for (const socket of sockets) {
    const ping = socket.ping.bind(socket);
    socket.ping = (...a) => {
      ping(...a);
      times.push(performance.now());
    };
  }
  const heartbeat = new SocketHeartbeat(INTERVAL_MS, { warn: (m) => log(m) }, () => log('a socket was dropped'));
  sockets.forEach((s) => heartbeat.add(s));
  await new Promise((ok) => setTimeout(ok, INTERVAL_MS * (BEATS + 0.5)));
  heartbeat.stop();
  for (const socket of sockets) {
    delete socket.ping;
  }
  // Beats are INTERVAL_MS apart; within one, slices a turn of the loop apart.
  return runs(times, INTERVAL_MS / 5).map((beat) => {
    const slices = runs(beat, 1);
    return { held: Math.max(...slices.map((run) => run.at(-1) - run[0])), span: beat.at(-1) - beat[0], slices: slices.length, pings: beat.length };
  });
}

async function main() {
  const ref = option('--baseline') ?? 'main';
  const baseline = buildBaseline(ref, log);
  const dist = resolve(option('--dist') ?? 'dist');
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
  await new Promise((ok) => wss.once('listening', ok));
  const sockets = [];
  wss.on('connection', (s) => sockets.push(s));
  const child = fork(new URL(import.meta.url).pathname, ['--clients', String(wss.address().port), '--sockets', String(SOCKETS)], { stdio: 'inherit' });
  try {
    await new Promise((ok, fail) => child.once('message', ok).once('exit', (code) => fail(new Error(`the clients exited (${code})`))));
    log(`${sockets.length} sockets, a beat every ${INTERVAL_MS} ms, ${BEATS} beats per build`);
    const rows = [];
    for (const [name, build] of [[`${ref} ${baseline.sha.slice(0, 7)}`, baseline.dist], ['this build', dist]]) {
      const beats = await measure(build, sockets);
      rows.push({ name, beats });
    }
    console.log(`\nheartbeat over ${sockets.length} sockets (medians of ${BEATS} beats)`);
    console.log(`${'build'.padEnd(18)} ${'beats'.padStart(6)} ${'pings/beat'.padStart(11)} ${'loop held ms'.padStart(13)} ${'longest ms'.padStart(11)} ${'beat spans ms'.padStart(14)} ${'slices'.padStart(7)}`);
    for (const { name, beats } of rows) {
      const fmt = (x) => x.toFixed(1);
      console.log(
        `${name.padEnd(18)} ${String(beats.length).padStart(6)} ${String(median(beats.map((b) => b.pings))).padStart(11)} ${fmt(median(beats.map((b) => b.held))).padStart(13)} ${fmt(Math.max(...beats.map((b) => b.held))).padStart(11)} ${fmt(median(beats.map((b) => b.span))).padStart(14)} ${String(median(beats.map((b) => b.slices))).padStart(7)}`,
      );
    }
  } finally {
    child.kill();
    wss.close();
  }
}
