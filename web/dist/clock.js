// The daemon's clock as seen from the browser. Timestamps in frames are the
// daemon's wall clock; the chart and the map's decay compare them with "now",
// so a browser whose clock is off by minutes must not blank the chart.

let offset = 0;      // daemon ms - browser ms
let known = false;

/** Feed a daemon timestamp that was "now" when the frame was sent. */
export function observeServerTime(serverMs) {
  if (!Number.isFinite(serverMs)) return;
  const o = serverMs - Date.now();
  // Frames arrive late, never early: the largest offset seen is the best
  // estimate, but let it drift back slowly in case either clock is stepped.
  offset = known ? Math.max(o, offset - 50) : o;
  known = true;
}

/** Current time on the daemon's clock, in ms since the epoch. */
export function serverNow() {
  return Date.now() + offset;
}
