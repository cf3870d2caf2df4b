-- The objects that decide who may see which private stream: exchange accounts and
-- bots, each owned by one user. Later migrations add what hangs off them.

-- The exchange catalog: exchanges the platform can trade on, with their parameters.
CREATE TABLE cat_exchanges (
    cat_ex_id   serial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    ohlcv_view  text NOT NULL DEFAULT '',
    params      jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A user's account on a catalog exchange. API credentials are not stored here.
CREATE TABLE exchanges (
    ex_id       serial PRIMARY KEY,
    user_id     integer NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    cat_ex_id   integer NOT NULL REFERENCES cat_exchanges (cat_ex_id) ON DELETE RESTRICT,
    name        text NOT NULL,
    test        boolean NOT NULL DEFAULT false,
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, name)
);
CREATE INDEX exchanges_user_idx ON exchanges (user_id);

CREATE TABLE bots (
    bot_id      serial PRIMARY KEY,
    user_id     integer NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    name        text NOT NULL,
    dry_run     boolean NOT NULL DEFAULT true,
    active      boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bots_user_idx ON bots (user_id);
