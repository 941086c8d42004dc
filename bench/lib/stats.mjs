// Small statistics for the bench: quantiles, medians, least-squares slopes.

export function quantile(sorted, q) {
  if (sorted.length === 0) {
    return NaN;
  }
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function median(values) {
  return quantile([...values].sort((a, b) => a - b), 0.5);
}

export function mean(values) {
  return values.length ? values.reduce((s, v) => s + v, 0) / values.length : NaN;
}

/** Least-squares slope of y over x (NaN with fewer than two distinct x). */
export function slope(points) {
  const pts = points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (new Set(pts.map(([x]) => x)).size < 2) {
    return NaN;
  }
  const mx = mean(pts.map(([x]) => x));
  const my = mean(pts.map(([, y]) => y));
  let num = 0;
  let den = 0;
  for (const [x, y] of pts) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return num / den;
}

/**
 * Summary of K fan-out operations: latency of every receipt (pooled), the last client
 * of each operation (median over operations), delivery, server CPU per operation.
 */
export function summarizeFanout(ops) {
  const all = ops.flatMap((o) => o.latencies).sort((a, b) => a - b);
  const lasts = ops.map((o) => (o.latencies.length ? Math.max(...o.latencies) : NaN));
  const expected = ops.reduce((s, o) => s + o.n, 0);
  const received = ops.reduce((s, o) => s + o.latencies.length, 0);
  return {
    ops: ops.length,
    p50: quantile(all, 0.5),
    p99: quantile(all, 0.99),
    max: all.length ? all[all.length - 1] : NaN,
    last: median(lasts),
    lastMean: mean(lasts),
    delivered: expected ? received / expected : NaN,
    cpu: median(ops.map((o) => o.cpu)),
    cpuMean: mean(ops.map((o) => o.cpu)),
    /** Time from the call to the start of the broadcast (the publish's own work). */
    beforeBroadcast: median(ops.map((o) => o.beforeBroadcast).filter(Number.isFinite)),
    /** Time from the call until the image check (decode) is done, where measured. */
    checked: median(ops.map((o) => o.checked).filter(Number.isFinite)),
  };
}
