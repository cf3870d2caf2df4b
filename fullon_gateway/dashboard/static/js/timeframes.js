// The 15 timeframes and their UTC buckets, the same rules the gateway's SQL uses
// (docs/ohlcv.md): fixed widths are strides from the Unix epoch, 1w opens Monday
// 00:00 UTC, 1M on the 1st of the month 00:00 UTC.

const MIN = 60000, HOUR = 60 * MIN, DAY = 24 * HOUR;
export const WIDTH = {
  "1m": MIN, "3m": 3 * MIN, "5m": 5 * MIN, "15m": 15 * MIN, "30m": 30 * MIN,
  "1h": HOUR, "2h": 2 * HOUR, "4h": 4 * HOUR, "6h": 6 * HOUR, "8h": 8 * HOUR, "12h": 12 * HOUR,
  "1d": DAY, "3d": 3 * DAY, "1w": 7 * DAY, "1M": 30 * DAY,
};
export const TIMEFRAMES = Object.keys(WIDTH);

// Opening time (epoch ms) of the bucket holding `ms`.
export function bucketStart(ms, tf) {
  if (tf === "1M") {
    const d = new Date(ms);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  }
  if (tf === "1w") {
    const day = Math.floor(ms / DAY) * DAY;
    const weekday = (new Date(day).getUTCDay() + 6) % 7; // Monday = 0
    return day - weekday * DAY;
  }
  const w = WIDTH[tf];
  return Math.floor(ms / w) * w;
}

// Opening time of the bucket after the one opening at `start`.
export function nextBucket(start, tf) {
  if (tf === "1M") {
    const d = new Date(start);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  }
  return start + WIDTH[tf];
}

export function isIntraday(tf) { return WIDTH[tf] < DAY; }
