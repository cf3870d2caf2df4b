-- OHLCV history: market trades per exchange and symbol, and the 1-minute candles kept
-- up to date from them. Every other timeframe is aggregated from the 1m candles at
-- read time (fullon_gateway/ohlcv/store.py).

-- One row per (exchange, symbol) the store has ever received trades for. Trades and
-- candles refer to it by a small integer, so the hot indexes stay narrow and a symbol
-- such as 'BTC/USD:BTC' never has to become a table or schema name.
CREATE TABLE ohlcv_symbols (
    symbol_id   serial PRIMARY KEY,
    exchange    text NOT NULL,
    symbol      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (exchange, symbol)
);

-- A note on foreign keys: trades and candles do not declare one to ohlcv_symbols. The
-- per-row FK check was measured at 45% of a bulk load's time, the only writer (the
-- loader) takes ids from ohlcv_symbols itself, and symbols are never deleted.

-- Market trades. trade_id is the exchange's own id, unique per exchange and symbol:
-- the primary key is what makes re-ingesting a batch idempotent. COLLATE "C" makes the
-- tie-break between trades with the same timestamp (see 1m candles) a plain byte order,
-- the same in every database and in Python.
CREATE TABLE ohlcv_trades (
    symbol_id   integer NOT NULL,  -- ohlcv_symbols (no FK: see above)
    trade_id    text COLLATE "C" NOT NULL,
    ts          timestamptz NOT NULL,
    price       double precision NOT NULL CHECK (price > 0),
    volume      double precision NOT NULL CHECK (volume >= 0),
    side        text NOT NULL CHECK (side IN ('buy', 'sell')),
    type        text,
    PRIMARY KEY (symbol_id, trade_id)
);
-- A time-range read of one symbol is a range scan of this index.
CREATE INDEX ohlcv_trades_time_idx ON ohlcv_trades (symbol_id, ts);

-- 1-minute candles, one row per (symbol, minute) that has trades. open/close belong to
-- the first/last trade of the minute in (ts, trade_id) order; first_*/last_* record which
-- trade that is, so a late batch can be merged into the bar without re-reading trades.
CREATE TABLE ohlcv_candles_1m (
    symbol_id   integer NOT NULL,  -- ohlcv_symbols (no FK: see above)
    ts          timestamptz NOT NULL,
    open        double precision NOT NULL,
    high        double precision NOT NULL,
    low         double precision NOT NULL,
    close       double precision NOT NULL,
    vol         double precision NOT NULL,
    trades      integer NOT NULL,
    first_ts    timestamptz NOT NULL,
    first_id    text COLLATE "C" NOT NULL,
    last_ts     timestamptz NOT NULL,
    last_id     text COLLATE "C" NOT NULL,
    PRIMARY KEY (symbol_id, ts)
);

-- Hourly roll-up of the 1m candles, rebuilt in SQL from them for each hour a load
-- touches (never from trades). Timeframes of an hour or more aggregate these rows
-- instead of 60x as many 1m rows: 1,000 4h candles read 4,000 rows, not 240,000.
-- Every bucket from 1h to 1M is a whole number of UTC hours, so nothing is lost.
CREATE TABLE ohlcv_candles_1h (
    symbol_id   integer NOT NULL,  -- ohlcv_symbols (no FK: see above)
    ts          timestamptz NOT NULL,
    open        double precision NOT NULL,
    high        double precision NOT NULL,
    low         double precision NOT NULL,
    close       double precision NOT NULL,
    vol         double precision NOT NULL,
    PRIMARY KEY (symbol_id, ts)
);
