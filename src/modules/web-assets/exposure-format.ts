/**
 * Cumulated exposure as ALS writes EXPO in data.json: H:MM:SS rounded to the second,
 * hours unbounded (3725 -> "1:02:05", 93784 -> "26:03:04").
 */
export function formatExposure(seconds: number): string {
  const total = Math.max(0, Math.round(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return `${h}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
}
