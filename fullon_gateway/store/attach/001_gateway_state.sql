-- Attach mode: the gateway's own state, in its own schema beside fullon's tables.
-- No foreign key points into fullon's tables: a foreign key would add triggers to
-- them. Rows of users fullon deletes are orphans the gateway never serves (every
-- credential is checked against the user it names).
-- sessions, refresh_tokens and api_keys therefore repeat migrations/001_auth.sql without
-- its foreign keys into users (a view here). Both files are applied history, so each
-- keeps its own text; tests/store/test_attach_mode.py checks the copies stay alike.

CREATE TABLE sessions (
    session_id  uuid PRIMARY KEY,
    user_id     integer NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    revoked_why text,
    user_agent  text,
    address     text
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

CREATE TABLE refresh_tokens (
    token_hash  bytea PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

-- Keys the gateway issued, and fullon's keys adopted on first use (fullon_key_id set):
-- only the SHA-256 of a key is kept here.
CREATE TABLE api_keys (
    key_id        serial PRIMARY KEY,
    user_id       integer NOT NULL,
    name          text NOT NULL,
    key_hash      bytea NOT NULL UNIQUE,
    key_prefix    text NOT NULL,
    scopes        text[] NOT NULL,
    is_active     boolean NOT NULL DEFAULT true,
    expires_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    fullon_key_id integer UNIQUE
);
CREATE INDEX api_keys_user_idx ON api_keys (user_id);

-- What the gateway keeps about fullon's rows that fullon has no column for.
CREATE TABLE user_state (
    user_id       integer PRIMARY KEY,
    password_hash text,          -- argon2id; NULL: verify fullon's users.password
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE exchange_state (
    ex_id          integer PRIMARY KEY,
    api_key_enc    bytea,
    api_secret_enc bytea,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE bot_state (
    bot_id      integer PRIMARY KEY,
    description text NOT NULL DEFAULT '',
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE strategy_state (
    str_id      integer PRIMARY KEY,
    params      jsonb NOT NULL,  -- exact values; fullon's strategies_params gets text copies
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE cat_strategy_state (
    cat_str_id  integer PRIMARY KEY,
    description text NOT NULL DEFAULT '',
    params      jsonb NOT NULL
);
CREATE TABLE cat_exchange_state (
    cat_ex_id   integer PRIMARY KEY,
    params      jsonb NOT NULL
);
-- A live trade written through the gateway: its order and bot (fullon's trades table
-- has neither column; fullon itself links them through ex_order_id).
CREATE TABLE trade_links (
    trade_id    integer PRIMARY KEY,
    order_id    integer,
    bot_id      integer
);
