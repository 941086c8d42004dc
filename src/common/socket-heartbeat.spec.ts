import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { PING_SLICE, SocketHeartbeat } from './socket-heartbeat.js';

const SOCKETS = 2 * PING_SLICE + 100;

describe('SocketHeartbeat over many sockets', () => {
  let wss: WebSocketServer | undefined;
  const clients: WebSocket[] = [];
  let spinning = false;

  afterEach(async () => {
    spinning = false;
    clients.splice(0).forEach((client) => client.terminate());
    await new Promise<void>((resolve) => (wss ? wss.close(() => resolve()) : resolve()));
  });

  /** `count` real connections; resolves with the server's side of each, in order. */
  async function connect(count: number): Promise<WebSocket[]> {
    wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((resolve) => wss!.once('listening', resolve));
    const accepted: WebSocket[] = [];
    wss.on('connection', (socket) => accepted.push(socket));
    const { port } = wss.address() as AddressInfo;
    for (let i = 0; i < count; i++) {
      const client = new WebSocket(`ws://127.0.0.1:${port}`);
      clients.push(client);
      await new Promise((resolve) => client.once('open', resolve));
    }
    while (accepted.length < count) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return accepted;
  }

  /** Counts turns of the event loop (one per check phase) from now on. */
  function turns(): () => number {
    let turn = 0;
    spinning = true;
    const spin = (): void => {
      turn++;
      if (spinning) {
        setImmediate(spin);
      }
    };
    setImmediate(spin);
    return () => turn;
  }

  async function until(done: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!done()) {
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${what}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  it(`pings every socket once per beat, at most ${PING_SLICE} per turn of the event loop; sockets that answer stay`, async () => {
    const sockets = await connect(SOCKETS);
    const turn = turns();
    const pings: { socket: WebSocket; turn: number }[] = [];
    for (const socket of sockets) {
      const ping = socket.ping.bind(socket);
      socket.ping = (...args: Parameters<WebSocket['ping']>): void => {
        pings.push({ socket, turn: turn() });
        ping(...args);
      };
    }
    const dead: WebSocket[] = [];
    const heartbeat = new SocketHeartbeat(300, { warn: () => undefined }, (socket) => dead.push(socket));
    sockets.forEach((socket) => heartbeat.add(socket));
    try {
      await until(() => pings.length >= SOCKETS, 'the first beat');
      const first = pings.slice(0, SOCKETS);
      expect(new Set(first.map((p) => p.socket)).size).toBe(SOCKETS);
      const perTurn = new Map<number, number>();
      first.forEach((p) => perTurn.set(p.turn, (perTurn.get(p.turn) ?? 0) + 1));
      expect(perTurn.size).toBe(Math.ceil(SOCKETS / PING_SLICE));
      expect(Math.max(...perTurn.values())).toBe(PING_SLICE);
      // The clients answer (ws pongs by itself): the next beat pings them all again, drops none.
      await until(() => pings.length >= 2 * SOCKETS, 'the second beat');
      expect(new Set(pings.slice(SOCKETS, 2 * SOCKETS).map((p) => p.socket)).size).toBe(SOCKETS);
      expect(dead).toEqual([]);
      expect(heartbeat.size).toBe(SOCKETS);
    } finally {
      heartbeat.stop();
    }
  });

  it('skips a socket that left the set during a beat, and pings no more once stopped, not even the rest of the beat', async () => {
    const sockets = await connect(SOCKETS);
    const pinged = new Set<WebSocket>();
    const gone = sockets[PING_SLICE];
    const heartbeat = new SocketHeartbeat(200, { warn: () => undefined }, () => undefined);
    for (const socket of sockets) {
      const ping = socket.ping.bind(socket);
      socket.ping = (...args: Parameters<WebSocket['ping']>): void => {
        pinged.add(socket);
        ping(...args);
        if (pinged.size === PING_SLICE) {
          // The first socket of the next slice leaves before its turn.
          heartbeat.delete(gone);
        } else if (pinged.size === 2 * PING_SLICE - 1) {
          // The second slice is done (one socket fewer): stopped before the third.
          heartbeat.stop();
        }
      };
    }
    sockets.forEach((socket) => heartbeat.add(socket));
    await until(() => pinged.size >= 2 * PING_SLICE - 1, 'two slices');
    // Time for the third slice and a few more beats, had it not stopped.
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(pinged.size).toBe(2 * PING_SLICE - 1);
    expect(pinged.has(gone)).toBe(false);
    expect(pinged.has(sockets[2 * PING_SLICE])).toBe(false);
  });
});
