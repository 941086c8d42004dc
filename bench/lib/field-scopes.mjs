// Field bench with several scopes (issue 20): N named scopes on one hub, each publishing
// its own stacks, the phones spread evenly over the scopes' viewers (/s/<id>/), plus lobby
// phones (GET /scopes, then /scopes/ws and the changed thumbnails). See bench/README.md.
import { lobbyLists, RecordedPage } from './field-browser.mjs';
import { LobbyPhone, makePlan, Monitor, publish, ReplayPhone } from './field-phones.mjs';
import { nowMs, sleep } from './proc.mjs';
import { median } from './stats.mjs';
import { renderTable } from './table.mjs';

/** Objects of the synthetic scopes (sent as `?object=`), so the lobby's cards carry one. */
const OBJECTS = ['M 42', 'M 31', 'NGC 7000', 'M 27', 'M 13', 'M 57', 'M 51', 'M 81'];
const THUMBNAIL = /\/image_files\/\d+\/0_0\.\w+$/;

const sum = (entries) => entries.reduce((s, e) => s + e.bytes, 0);
const kb = (bytes) => (bytes / 1024).toFixed(0);
const kb1 = (bytes) => (bytes / 1024).toFixed(1);
const sec = (ms) => (ms / 1000).toFixed(2);
const max = (xs) => Math.max(...xs);
const slim = (t0) => (e) => ({ url: e.url, status: e.status, bytes: e.bytes, startMs: +(e.start - t0).toFixed(1), endMs: +(e.end - t0).toFixed(1) });

/** The scope ids of a run of `n` scopes: `scope-1` … `scope-n` (main stays empty). */
export const scopeIds = (n) => Array.from({ length: n }, (_, i) => `scope-${i + 1}`);

/**
 * Runs the scopes bench on a started service: records one scope viewer and the lobby in
 * Chromium, then `updates` rounds in which every scope publishes at the same moment.
 * `track(x)` registers what the caller closes on exit (phones).
 */
export async function runScopes({ port, browser, ids, phones: phoneCount, lobbyPhones: lobbyCount, updates, staggerMs = 0, pool, log, replayTimeoutMs, track }) {
  const imageOf = (scopeIndex, round) => pool[(scopeIndex + round) % pool.length];
  const put = (i, round) => publish(port, imageOf(i, round), `/s/${ids[i]}/api/image?object=${encodeURIComponent(OBJECTS[i % OBJECTS.length])}`);
  let round = 0;
  // Each scope is created by its first publish.
  await Promise.all(ids.map((_, i) => put(i, round)));
  round += 1;
  const monitors = [];
  for (const id of ids) {
    const m = track(new Monitor(port, `/s/${id}/ws`));
    await m.connect();
    monitors.push(m);
  }

  // The phones, spread evenly: phone k watches scope k mod N.
  const viewers = ids.map(() => []);
  for (let k = 0; k < phoneCount; k++) {
    const p = track(new ReplayPhone(port, `/s/${ids[k % ids.length]}/ws`));
    await p.connect();
    viewers[k % ids.length].push(p);
  }

  // What a real Chromium phone fetches: each scope's viewer after its publish, then the lobby.
  const recordings = { viewers: [], lobby: null };
  const plans = [];
  for (let i = 0; i < ids.length; i++) {
    const page = await RecordedPage.open(browser, 'phone');
    try {
      page.begin();
      await page.page.goto(`http://127.0.0.1:${port}/s/${ids[i]}/`);
      await page.waitShownAndIdle(0);
      const first = page.networkEntries();
      const before = await page.shownCount();
      page.begin();
      const t0 = nowMs();
      await put(i, round);
      const { shownAt } = await page.waitShownAndIdle(before);
      const entries = page.networkEntries();
      plans.push(makePlan(entries, monitors[i].last?.version ?? null));
      recordings.viewers.push({ id: ids[i], firstLoad: first.map(slim(t0)), update: entries.map(slim(t0)), shownMs: shownAt - t0 });
      log(`scope ${ids[i]} viewer: ${entries.length} requests, ${kb(sum(entries))} KB per update, shown after ${sec(shownAt - t0)} s (first load ${kb(sum(first))} KB)`);
    } finally {
      await page.close();
    }
  }
  round += 1;

  const lobbyPage = await RecordedPage.open(browser, 'phone', lobbyLists);
  let lobbyPlan;
  try {
    lobbyPage.begin();
    await lobbyPage.page.goto(`http://127.0.0.1:${port}/scopes`);
    await lobbyPage.waitShownAndIdle(0);
    await lobbyPage.page.waitForFunction((n) => document.querySelectorAll('#cards img.thumb:not([hidden])').length >= n, ids.length, { timeout: 60_000 });
    await lobbyPage.waitShownAndIdle(0);
    const first = lobbyPage.networkEntries();
    const firstFrames = lobbyPage.frames;
    const before = await lobbyPage.shownCount();
    lobbyPage.begin();
    const t0 = nowMs();
    await put(0, round);
    const { shownAt } = await lobbyPage.waitShownAndIdle(before);
    const entries = lobbyPage.networkEntries();
    const frames = lobbyPage.frames;
    recordings.lobby = {
      firstLoad: first.map(slim(t0)),
      firstLoadBytes: sum(first) + sum(firstFrames),
      update: entries.map(slim(t0)),
      updateFrames: frames.map((f) => ({ bytes: f.bytes, atMs: +(f.at - t0).toFixed(1) })),
      updateBytes: sum(entries) + sum(frames),
      listedMs: shownAt - t0,
    };
    lobbyPlan = makePlan(
      first.filter((e) => !THUMBNAIL.test(new URL(e.url).pathname)),
      null,
    );
    log(`lobby (Chromium): first load ${kb(recordings.lobby.firstLoadBytes)} KB in ${first.length} requests + ${firstFrames.length} frames; one scope's update: ${entries.map((e) => `${new URL(e.url).pathname} (${kb1(e.bytes)} KB)`).join(', ')} + ${frames.length} frames (${sum(frames)} B)`);
  } finally {
    await lobbyPage.close();
  }
  round += 1;

  // The lobby phones load the page at once, then stay.
  const lobby = [];
  for (let k = 0; k < lobbyCount; k++) {
    lobby.push(track(new LobbyPhone(port)));
  }
  const loads = await Promise.all(lobby.map((p) => p.load(lobbyPlan)));
  const loadBad = lobby.flatMap((p) => p.statuses.filter((s) => s === 0 || s >= 400));
  if (loadBad.length) {
    throw new Error(`lobby load: requests answered ${[...new Set(loadBad)].join(', ')}`);
  }
  log(`lobby: ${lobbyCount} phones loaded /scopes at once: ${kb(median(loads.map((l) => l.bytes)))} KB each, the last after ${sec(max(loads.map((l) => l.ms)))} s`);

  // Rounds: every scope publishes at once (the worst case of independent stackers), or `staggerMs` apart.
  const perPhoneBytes = plans.map((p) => sum(p.requests));
  const totalBytes = perPhoneBytes.reduce((s, b, i) => s + b * viewers[i].length, 0);
  const timeout = replayTimeoutMs(totalBytes / Math.max(1, phoneCount), phoneCount + lobbyCount);
  const rounds = [];
  const lobbyStart = lobby.map((p) => p.counters());
  for (let u = 0; u < updates; u++) {
    const armed = ids.map((_, i) => viewers[i].map((p) => p.arm(plans[i], timeout + i * staggerMs)));
    const versionsBefore = lobby.map((p) => p.versions());
    const lobbyDone = lobby.map((p, k) => p.newerThan(versionsBefore[k], timeout + ids.length * staggerMs));
    const lobbyBefore = lobby.map((p) => p.counters());
    // Scope i publishes i × stagger after the round starts; its times run from its own publish.
    const starts = [];
    const published = ids.map((_, i) =>
      sleep(i * staggerMs)
        .then(() => (starts[i] = nowMs()))
        .then(() => put(i, round))
        .then(() => nowMs()),
    );
    const putAt = await Promise.all(published);
    round += 1;
    const results = await Promise.all(armed.map((a) => Promise.all(a)));
    await Promise.all(lobbyDone);
    const bad = results.flat().flatMap((r) => r.statuses.filter((s) => s >= 400));
    if (bad.length) {
      throw new Error(`round ${u + 1}: replayed requests answered ${[...new Set(bad)].join(', ')}`);
    }
    const scopes = ids.map((id, i) => ({
      id,
      putMs: putAt[i] - starts[i],
      last: results[i].length ? max(results[i].map((r) => r.doneAt)) - starts[i] : NaN,
      // From the first phone's new_image to the last phone's last byte: the link's share.
      delivery: results[i].length ? max(results[i].map((r) => r.doneAt)) - Math.min(...results[i].map((r) => r.triggeredAt)) : NaN,
      lobby: lobby.length ? max(lobby.map((p, k) => p.arrivalAfter(id, versionsBefore[k].get(id) ?? 0))) - starts[i] : NaN,
      bytesPerPhone: results[i].length ? median(results[i].map((r) => r.bytes)) : NaN,
    }));
    const lobbyLast = lobby.length ? max(scopes.map((s) => s.lobby)) : NaN;
    const lobbyBytes = lobby.map((p, k) => {
      const c = p.counters();
      return c.wsBytes - lobbyBefore[k].wsBytes + c.thumbnailBytes - lobbyBefore[k].thumbnailBytes;
    });
    const r = { scopes, lobbyLast, lobbyBytesPerPhone: median(lobbyBytes), last: max([...scopes.map((s) => s.last).filter(Number.isFinite), ...(Number.isFinite(lobbyLast) ? [lobbyLast] : [])]) };
    rounds.push(r);
    log(`round ${u + 1}: ${scopes.map((s) => `${s.id} ${sec(s.last)} s (answered ${sec(s.putMs)}, lobby ${sec(s.lobby)})`).join(', ')}; lobby ${kb1(r.lobbyBytesPerPhone)} KB each`);
  }
  // Bytes per lobby phone over all rounds, viewer-count lists included, per scope update.
  const lobbyTotals = lobby.map((p, k) => {
    const c = p.counters();
    return { ws: c.wsBytes - lobbyStart[k].wsBytes, thumbnails: c.thumbnailBytes - lobbyStart[k].thumbnailBytes, messages: c.messages - lobbyStart[k].messages };
  });
  const lobbyBadStatuses = lobby.flatMap((p) => p.statuses.filter((s) => s === 0 || s >= 400));
  if (lobbyBadStatuses.length) {
    throw new Error(`lobby thumbnails answered ${[...new Set(lobbyBadStatuses)].join(', ')}`);
  }
  return { ids, viewers: viewers.map((v) => v.length), recordings, plans: perPhoneBytes, loads, rounds, lobbyTotals };
}

/** Prints the table of a scopes run; returns its rows. */
export function reportScopes({ ids, viewers, recordings, plans, loads, rounds, lobbyTotals }, { rate, phones, lobbyPhones, updates, staggerMs, imageNote }) {
  const rows = ids.map((id, i) => {
    const lasts = rounds.map((r) => r.scopes[i].last);
    return {
      who: `${id} viewer (${viewers[i]} phones)`,
      put: sec(median(rounds.map((r) => r.scopes[i].putMs))),
      median: sec(median(lasts)),
      max: sec(max(lasts)),
      delivery: sec(median(rounds.map((r) => r.scopes[i].delivery))),
      lobby: sec(median(rounds.map((r) => r.scopes[i].lobby))),
      bytes: kb(median(rounds.map((r) => r.scopes[i].bytesPerPhone))),
      load: kb(sum(recordings.viewers[i].firstLoad)),
    };
  });
  const lobbyLasts = rounds.flatMap((r) => r.scopes.map((x) => x.lobby));
  const perScopeUpdate = median(lobbyTotals.map((t) => (t.ws + t.thumbnails) / (updates * ids.length)));
  rows.push({ who: `lobby (${lobbyPhones} phones)`, median: sec(median(lobbyLasts)), max: sec(max(lobbyLasts)), bytes: kb1(median(rounds.map((r) => r.lobbyBytesPerPhone))) + ' (round)', load: kb(median(loads.map((l) => l.bytes))) });
  const alls = rounds.map((r) => r.last);
  rows.push({ who: `overall (${phones + lobbyPhones} phones)`, put: sec(median(rounds.map((r) => max(r.scopes.map((x) => x.putMs))))), median: sec(median(alls)), max: sec(max(alls)), delivery: sec(median(rounds.map((r) => max(r.scopes.map((x) => x.delivery))))), bytes: '', load: '' });
  const columns = [
    ['who', 'who', 'left'],
    ['put', 'publish answered (s, median)', 'right'],
    ['median', 'last phone has the update (s, median)', 'right'],
    ['max', 'max (s)', 'right'],
    ['delivery', 'of which after new_image (s, median)', 'right'],
    ['lobby', 'lobby has its thumbnail (s, median)', 'right'],
    ['bytes', 'KB per phone per update', 'right'],
    ['load', 'first load (KB)', 'right'],
  ];
  console.log(`\nField bench, ${ids.length} scopes: ${rate} Mbit/s shared link (tc tbf, MTU 1500), ${phones} viewer phones spread over ${ids.join(', ')} + ${lobbyPhones} lobby phones; ${updates} rounds in which ${staggerMs ? `the scopes publish ${sec(staggerMs)} s apart (times from each scope's own publish)` : 'every scope publishes at the same moment'}; ${imageNote}\n`);
  console.log(renderTable(rows, columns));
  const l = recordings.lobby;
  console.log(`\nlobby: whole load ${kb(median(loads.map((x) => x.bytes)))} KB per phone (replayed; Chromium: ${kb(l.firstLoadBytes)} KB in ${l.firstLoad.length} requests), one scope viewer's update ${kb(median(plans))} KB`);
  console.log(`bytes per lobby update (one scope publishes): ${kb1(perScopeUpdate)} KB per lobby phone (lists ${kb1(median(lobbyTotals.map((t) => t.ws / (updates * ids.length))))} KB + thumbnails ${kb1(median(lobbyTotals.map((t) => t.thumbnails / (updates * ids.length))))} KB; ${median(lobbyTotals.map((t) => t.messages))} lists in ${updates} rounds); Chromium, one scope's update: ${kb1(l.updateBytes)} KB (${l.update.map((e) => `${new URL(e.url).pathname} ${kb1(e.bytes)} KB`).join(', ')} + ${l.updateFrames.length} frames ${sum(l.updateFrames)} B)`);
  console.log(`last phone, each round (s): ${rounds.map((r) => sec(r.last)).join(' ')}; target ≤ 2 s (issue 20): ${max(alls) <= 2000 ? 'met' : median(alls) <= 2000 ? 'met on the median, not on the max' : 'missed'}`);
  return rows;
}
