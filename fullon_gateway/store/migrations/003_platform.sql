-- The trading platform's data: symbols, strategies, what bots run on, their logs,
-- and the orders and trades they make. Every row hangs off an owner through foreign
-- keys; orders and trades carry their owner's user_id so isolation is one indexed
-- predicate, and composite keys make that copy impossible to get wrong.

-- Encrypted exchange credentials (Fernet tokens); NULL when none were given.
ALTER TABLE exchanges
    ADD COLUMN api_key_enc    bytea,
    ADD COLUMN api_secret_enc bytea;
-- Targets for composite foreign keys that pin a child row to the owner of its parent.
ALTER TABLE exchanges ADD CONSTRAINT exchanges_ex_user_key UNIQUE (ex_id, user_id);
ALTER TABLE bots ADD CONSTRAINT bots_bot_user_key UNIQUE (bot_id, user_id);
ALTER TABLE bots ADD COLUMN description text NOT NULL DEFAULT '';
CREATE UNIQUE INDEX bots_user_name_key ON bots (user_id, lower(name));

-- Tradable symbols per catalog exchange.
CREATE TABLE symbols (
    symbol_id    serial PRIMARY KEY,
    cat_ex_id    integer NOT NULL REFERENCES cat_exchanges (cat_ex_id) ON DELETE CASCADE,
    symbol       text NOT NULL,
    base         text NOT NULL,
    quote        text NOT NULL,
    decimals     integer NOT NULL DEFAULT 8 CHECK (decimals BETWEEN 0 AND 18),
    futures      boolean NOT NULL DEFAULT false,
    updateframe  text NOT NULL DEFAULT '1h',
    backtest     integer NOT NULL DEFAULT 30 CHECK (backtest >= 0),
    active       boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (cat_ex_id, symbol)
);
-- search: prefix and substring on the symbol, case-insensitive.
CREATE INDEX symbols_symbol_lower_idx ON symbols (lower(symbol) text_pattern_ops);

-- Strategy catalog: code the platform can run, with the parameters it accepts
-- ({"name": {"type": "int|float|bool|str", "default": ...}}).
CREATE TABLE cat_strategies (
    cat_str_id   serial PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    description  text NOT NULL DEFAULT '',
    params       jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- A strategy a bot runs, with its sizing and parameter values.
CREATE TABLE bot_strategies (
    str_id       serial PRIMARY KEY,
    bot_id       integer NOT NULL REFERENCES bots (bot_id) ON DELETE CASCADE,
    cat_str_id   integer NOT NULL REFERENCES cat_strategies (cat_str_id),
    size         numeric CHECK (size IS NULL OR size > 0),
    leverage     numeric NOT NULL DEFAULT 1 CHECK (leverage > 0),
    params       jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bot_strategies_bot_idx ON bot_strategies (bot_id);
CREATE INDEX bot_strategies_cat_idx ON bot_strategies (cat_str_id);

-- Market data feeds a bot consumes.
CREATE TABLE bot_feeds (
    feed_id      serial PRIMARY KEY,
    bot_id       integer NOT NULL REFERENCES bots (bot_id) ON DELETE CASCADE,
    symbol_id    integer NOT NULL REFERENCES symbols (symbol_id),
    period       text NOT NULL
                 CHECK (period IN ('ticks', 'minutes', 'hours', 'days', 'weeks', 'months')),
    compression  integer NOT NULL DEFAULT 1 CHECK (compression > 0),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bot_feeds_bot_idx ON bot_feeds (bot_id);
CREATE INDEX bot_feeds_symbol_idx ON bot_feeds (symbol_id);

-- Exchange accounts a bot trades on; both must belong to the same user.
CREATE TABLE bot_exchanges (
    bot_id   integer NOT NULL,
    ex_id    integer NOT NULL,
    user_id  integer NOT NULL,
    PRIMARY KEY (bot_id, ex_id),
    FOREIGN KEY (bot_id, user_id) REFERENCES bots (bot_id, user_id) ON DELETE CASCADE,
    FOREIGN KEY (ex_id, user_id) REFERENCES exchanges (ex_id, user_id) ON DELETE CASCADE
);
CREATE INDEX bot_exchanges_ex_idx ON bot_exchanges (ex_id);

CREATE TABLE bot_logs (
    log_id   bigserial PRIMARY KEY,
    bot_id   integer NOT NULL REFERENCES bots (bot_id) ON DELETE CASCADE,
    ts       timestamptz NOT NULL DEFAULT now(),
    level    text NOT NULL DEFAULT 'info'
             CHECK (level IN ('debug', 'info', 'warning', 'error')),
    message  text NOT NULL
);
CREATE INDEX bot_logs_bot_idx ON bot_logs (bot_id, log_id DESC);

-- Orders. A deleted bot keeps its history: bot_id becomes NULL (only that column;
-- the owner stays). Exchange accounts with orders cannot be deleted (NO ACTION: checked at
-- statement end, so deleting a whole user still cascades cleanly).
CREATE TABLE orders (
    order_id     bigserial PRIMARY KEY,
    user_id      integer NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    bot_id       integer,
    ex_id        integer NOT NULL,
    symbol       text NOT NULL,
    side         text NOT NULL CHECK (side IN ('buy', 'sell')),
    order_type   text NOT NULL CHECK (order_type IN ('market', 'limit', 'stop', 'stop_limit')),
    volume       numeric NOT NULL CHECK (volume > 0),
    price        numeric CHECK (price IS NULL OR price > 0),
    filled       numeric NOT NULL DEFAULT 0 CHECK (filled >= 0),
    status       text NOT NULL DEFAULT 'New'
                 CHECK (status IN ('New', 'Open', 'PartiallyFilled', 'Filled', 'Cancelled',
                                   'Rejected')),
    reason       text,
    ex_order_id  text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (bot_id, user_id) REFERENCES bots (bot_id, user_id) ON DELETE SET NULL (bot_id),
    FOREIGN KEY (ex_id, user_id) REFERENCES exchanges (ex_id, user_id)
);
CREATE INDEX orders_user_idx ON orders (user_id, order_id DESC);
CREATE INDEX orders_bot_idx ON orders (bot_id, order_id DESC);
CREATE INDEX orders_ex_idx ON orders (ex_id);
CREATE INDEX orders_open_idx ON orders (user_id, order_id DESC)
    WHERE status IN ('New', 'Open', 'PartiallyFilled');

-- Trades (fills), live or dry-run. roi is the realized profit of the trade in quote
-- currency (NULL for an opening trade); cost = price * volume.
CREATE TABLE trades (
    trade_id     bigserial PRIMARY KEY,
    user_id      integer NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    bot_id       integer,
    ex_id        integer NOT NULL,
    order_id     bigint REFERENCES orders (order_id) ON DELETE SET NULL,
    symbol       text NOT NULL,
    side         text NOT NULL CHECK (side IN ('buy', 'sell')),
    volume       numeric NOT NULL CHECK (volume > 0),
    price        numeric NOT NULL CHECK (price > 0),
    cost         numeric NOT NULL,
    fee          numeric NOT NULL DEFAULT 0 CHECK (fee >= 0),
    roi          numeric,
    roi_pct      numeric,
    dry_run      boolean NOT NULL DEFAULT false,
    ts           timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (bot_id, user_id) REFERENCES bots (bot_id, user_id) ON DELETE SET NULL (bot_id),
    FOREIGN KEY (ex_id, user_id) REFERENCES exchanges (ex_id, user_id)
);
CREATE INDEX trades_user_idx ON trades (user_id, trade_id DESC);
CREATE INDEX trades_bot_idx ON trades (bot_id, trade_id DESC);
CREATE INDEX trades_user_ts_idx ON trades (user_id, ts);
CREATE INDEX trades_order_idx ON trades (order_id);
CREATE INDEX trades_ex_idx ON trades (ex_id);

-- The exchanges fullon trades on; operators add more through the admin API.
INSERT INTO cat_exchanges (name, ohlcv_view, params) VALUES
    ('kraken', '', '{"ws": true}'::jsonb),
    ('bitmex', '', '{"ws": true}'::jsonb),
    ('hyperliquid', '', '{"ws": true}'::jsonb),
    ('binance', '', '{"ws": true}'::jsonb)
ON CONFLICT (name) DO NOTHING;
