"""The 15 candle timeframes: how each is bucketed in SQL and in Python.

Buckets are UTC and never depend on the session's TimeZone setting:
- fixed widths (1m ... 3d) are ``date_bin`` strides from the Unix epoch, so 4h candles
  open at 00:00, 04:00, ... UTC and 3d candles at epoch + 3k days (1970-01-01 was a
  Thursday, so a 3d candle does not open on a fixed weekday);
- 1w opens on Monday 00:00 UTC (``date_trunc('week', ts, 'UTC')``, ISO weeks);
- 1M opens on the first day of each calendar month 00:00 UTC.

The Python side (``floor``, ``shift``) computes range bounds that are always bucket
edges: a candle is always aggregated over its whole bucket.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Timeframe:
    name: str
    seconds: int  # width for fixed timeframes; 0 for the calendar ones (1w uses 7 days)
    kind: str  # "fixed" | "week" | "month"

    def bucket_sql(self, column: str) -> str:
        """SQL expression mapping a timestamptz column to the opening time of its bucket."""
        if self.kind == "month":
            return f"date_trunc('month', {column}, 'UTC')"
        if self.kind == "week":
            return f"date_trunc('week', {column}, 'UTC')"
        # A stride in seconds: date_bin treats it as absolute time, whatever the TimeZone.
        return (f"date_bin('{self.seconds} seconds'::interval, {column}, "
                f"'1970-01-01 00:00:00+00'::timestamptz)")

    def floor(self, ts: dt.datetime) -> dt.datetime:
        """Opening time of the bucket holding ``ts`` (aware UTC in, aware UTC out)."""
        ts = ts.astimezone(dt.UTC)
        if self.kind == "month":
            return ts.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        if self.kind == "week":
            day = ts.replace(hour=0, minute=0, second=0, microsecond=0)
            return day - dt.timedelta(days=day.weekday())
        width = dt.timedelta(seconds=self.seconds)
        return EPOCH + ((ts - EPOCH) // width) * width

    def ceil(self, ts: dt.datetime) -> dt.datetime:
        """Opening time of the first bucket that opens at or after ``ts``."""
        start = self.floor(ts)
        return start if start == ts else self.shift(start, 1)

    def shift(self, bucket: dt.datetime, n: int) -> dt.datetime:
        """The bucket ``n`` buckets after (negative: before) the bucket opening at ``bucket``.

        Clamped to the range Python datetimes can hold, which is far wider than any data.
        """
        try:
            if self.kind == "month":
                months = bucket.year * 12 + bucket.month - 1 + n
                year, month = divmod(months, 12)
                if year < 1:
                    return MIN_TIME
                if year > 9999:
                    return MAX_TIME
                return bucket.replace(year=year, month=month + 1)
            width = dt.timedelta(days=7) if self.kind == "week" else dt.timedelta(
                seconds=self.seconds)
            return bucket + n * width
        except OverflowError:
            return MIN_TIME if n < 0 else MAX_TIME


# The span of times the bucket arithmetic works on: a month (or 3d, or a week) inside
# what Python datetimes can hold, so floor/shift never step out of range.
MIN_TIME = dt.datetime(1, 1, 15, tzinfo=dt.UTC)
MAX_TIME = dt.datetime(9999, 12, 1, tzinfo=dt.UTC)


def clamp(ts: dt.datetime) -> dt.datetime:
    return min(max(ts, MIN_TIME), MAX_TIME)

_MIN = 60
_HOUR = 3600
_DAY = 86400

TIMEFRAMES: dict[str, Timeframe] = {
    tf.name: tf
    for tf in (
        Timeframe("1m", _MIN, "fixed"),
        Timeframe("3m", 3 * _MIN, "fixed"),
        Timeframe("5m", 5 * _MIN, "fixed"),
        Timeframe("15m", 15 * _MIN, "fixed"),
        Timeframe("30m", 30 * _MIN, "fixed"),
        Timeframe("1h", _HOUR, "fixed"),
        Timeframe("2h", 2 * _HOUR, "fixed"),
        Timeframe("4h", 4 * _HOUR, "fixed"),
        Timeframe("6h", 6 * _HOUR, "fixed"),
        Timeframe("8h", 8 * _HOUR, "fixed"),
        Timeframe("12h", 12 * _HOUR, "fixed"),
        Timeframe("1d", _DAY, "fixed"),
        Timeframe("3d", 3 * _DAY, "fixed"),
        Timeframe("1w", 7 * _DAY, "week"),
        Timeframe("1M", 0, "month"),
    )
}

VALID_TIMEFRAMES = tuple(TIMEFRAMES)


def timeframe(name: str) -> Timeframe | None:
    return TIMEFRAMES.get(name)
