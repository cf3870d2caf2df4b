-- The mapping from fullon's tables (schema public) to the relations the gateway's
-- queries use (schema gateway): one view per relation, named and shaped as the
-- standalone table is, and one INSTEAD OF trigger per view that writes the change to
-- fullon's columns (and to the gateway's side tables for what fullon has no column
-- for). Rendered by store/attach/__init__.py (the @NAME@ placeholders) and recreated
-- whenever the rendered text changes. fullon's timestamps are naive UTC: read with
-- AT TIME ZONE 'UTC', written back the same way.

-- users ------------------------------------------------------------------------------
CREATE VIEW gateway.users AS
SELECT u.uid AS user_id,
       u.mail::text AS email,
       u.name::text AS name,
       CASE WHEN lower(u.mail) = lower(@ADMIN_MAIL@) OR lower(u.role::text) = 'admin'
            THEN 'admin' ELSE 'user' END AS role,
       u.active AS is_active,
       u."timestamp" AT TIME ZONE 'UTC' AS created_at,
       coalesce((SELECT s.updated_at FROM gateway.user_state s WHERE s.user_id = u.uid),
                u."timestamp" AT TIME ZONE 'UTC') AS updated_at,
       -- char(64) pads a 60-character bcrypt hash with spaces: ::text drops them.
       coalesce((SELECT s.password_hash FROM gateway.user_state s WHERE s.user_id = u.uid),
                rtrim(u.password::text)) AS password_hash
  FROM public.users u;

CREATE FUNCTION gateway.users_write() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ts timestamp;
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') AND EXISTS (
        SELECT 1 FROM public.users
         WHERE lower(mail) = lower(NEW.email)
           AND (TG_OP = 'INSERT' OR uid <> OLD.user_id)) THEN
        RAISE unique_violation USING MESSAGE = 'a user with this email already exists',
              CONSTRAINT = 'users_email_key';
    END IF;
    IF TG_OP = 'INSERT' THEN
        -- fullon's password column gets '!', which no password matches: the gateway
        -- keeps this user's argon2id hash in its own schema.
        INSERT INTO public.users (mail, password, f2a, role, name, lastname, phone, id_num,
                                  active)
        VALUES (NEW.email, '!', '', coalesce(NEW.role, 'user'), coalesce(NEW.name, ''), '',
                '', '', coalesce(NEW.is_active, true))
        RETURNING uid, "timestamp" INTO NEW.user_id, ts;
        INSERT INTO gateway.user_state (user_id, password_hash)
        VALUES (NEW.user_id, NEW.password_hash);
        NEW.role := coalesce(NEW.role, 'user');
        NEW.name := coalesce(NEW.name, '');
        NEW.is_active := coalesce(NEW.is_active, true);
        NEW.created_at := ts AT TIME ZONE 'UTC';
        NEW.updated_at := NEW.created_at;
        RETURN NEW;
    ELSIF TG_OP = 'UPDATE' THEN
        IF (NEW.email, NEW.name, NEW.is_active, NEW.role)
           IS DISTINCT FROM (OLD.email, OLD.name, OLD.is_active, OLD.role) THEN
            UPDATE public.users
               SET mail = NEW.email, name = NEW.name, active = NEW.is_active,
                   role = CASE WHEN NEW.role IS DISTINCT FROM OLD.role THEN NEW.role
                               ELSE role END
             WHERE uid = OLD.user_id;
        END IF;
        IF NEW.password_hash IS DISTINCT FROM OLD.password_hash THEN
            INSERT INTO gateway.user_state (user_id, password_hash)
            VALUES (OLD.user_id, NEW.password_hash)
            ON CONFLICT (user_id) DO UPDATE
               SET password_hash = excluded.password_hash, updated_at = now();
        ELSE
            INSERT INTO gateway.user_state (user_id) VALUES (OLD.user_id)
            ON CONFLICT (user_id) DO UPDATE SET updated_at = now();
        END IF;
        RETURN NEW;
    ELSE
        -- As in standalone mode, a user's orders and trades go with the user (fullon
        -- declares no foreign key for them).
        DELETE FROM gateway.sessions WHERE user_id = OLD.user_id;
        DELETE FROM gateway.api_keys WHERE user_id = OLD.user_id;
        DELETE FROM gateway.user_state WHERE user_id = OLD.user_id;
        DELETE FROM public.trades WHERE uid = OLD.user_id;
        DELETE FROM public.dry_trades WHERE uid = OLD.user_id;
        DELETE FROM public.orders WHERE uid = OLD.user_id;
        DELETE FROM public.users WHERE uid = OLD.user_id;
        RETURN OLD;
    END IF;
END $$;
CREATE TRIGGER users_write INSTEAD OF INSERT OR UPDATE OR DELETE ON gateway.users
    FOR EACH ROW EXECUTE FUNCTION gateway.users_write();

-- cat_exchanges ----------------------------------------------------------------------
CREATE VIEW gateway.cat_exchanges AS
SELECT c.cat_ex_id,
       c.name::text AS name,
       coalesce(c.ohlcv_view, '') AS ohlcv_view,
       coalesce((SELECT x.params FROM gateway.cat_exchange_state x
                  WHERE x.cat_ex_id = c.cat_ex_id),
                (SELECT jsonb_object_agg(p.name, p.value) FROM public.cat_exchanges_params p
                  WHERE p.cat_ex_id = c.cat_ex_id),
                '{}'::jsonb) AS params,
       NULL::timestamptz AS created_at
  FROM public.cat_exchanges c;

CREATE FUNCTION gateway.cat_exchanges_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO public.cat_exchanges (name, ohlcv_view)
        VALUES (NEW.name, coalesce(NEW.ohlcv_view, '')) RETURNING cat_ex_id INTO NEW.cat_ex_id;
        INSERT INTO gateway.cat_exchange_state (cat_ex_id, params)
        VALUES (NEW.cat_ex_id, coalesce(NEW.params, '{}'::jsonb));
        RETURN NEW;
    ELSIF TG_OP = 'UPDATE' THEN
        UPDATE public.cat_exchanges SET name = NEW.name, ohlcv_view = NEW.ohlcv_view
         WHERE cat_ex_id = OLD.cat_ex_id;
        INSERT INTO gateway.cat_exchange_state (cat_ex_id, params)
        VALUES (OLD.cat_ex_id, coalesce(NEW.params, '{}'::jsonb))
        ON CONFLICT (cat_ex_id) DO UPDATE SET params = excluded.params;
        RETURN NEW;
    ELSE
        DELETE FROM public.cat_exchanges WHERE cat_ex_id = OLD.cat_ex_id;
        DELETE FROM gateway.cat_exchange_state WHERE cat_ex_id = OLD.cat_ex_id;
        RETURN OLD;
    END IF;
END $$;
CREATE TRIGGER cat_exchanges_write INSTEAD OF INSERT OR UPDATE OR DELETE
    ON gateway.cat_exchanges FOR EACH ROW EXECUTE FUNCTION gateway.cat_exchanges_write();

-- exchanges (a user's exchange accounts) ---------------------------------------------
CREATE VIEW gateway.exchanges AS
SELECT e.ex_id,
       e.uid AS user_id,
       e.cat_ex_id,
       e.name::text AS name,
       e.test,
       e.active,
       e."timestamp" AT TIME ZONE 'UTC' AS created_at,
       coalesce((SELECT x.updated_at FROM gateway.exchange_state x WHERE x.ex_id = e.ex_id),
                e."timestamp" AT TIME ZONE 'UTC') AS updated_at,
       (SELECT x.api_key_enc FROM gateway.exchange_state x WHERE x.ex_id = e.ex_id)
           AS api_key_enc,
       (SELECT x.api_secret_enc FROM gateway.exchange_state x WHERE x.ex_id = e.ex_id)
           AS api_secret_enc
  FROM public.exchanges e;

CREATE FUNCTION gateway.exchanges_write() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ts timestamp;
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') AND EXISTS (
        SELECT 1 FROM public.exchanges
         WHERE uid = NEW.user_id AND name = NEW.name
           AND (TG_OP = 'INSERT' OR ex_id <> OLD.ex_id)) THEN
        RAISE unique_violation USING MESSAGE = 'an exchange account with this name exists',
              CONSTRAINT = 'exchanges_user_id_name_key';
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO public.exchanges (uid, cat_ex_id, name, test, active)
        VALUES (NEW.user_id, NEW.cat_ex_id, NEW.name, coalesce(NEW.test, false),
                coalesce(NEW.active, true))
        RETURNING ex_id, "timestamp" INTO NEW.ex_id, ts;
        IF NEW.api_key_enc IS NOT NULL OR NEW.api_secret_enc IS NOT NULL THEN
            INSERT INTO gateway.exchange_state (ex_id, api_key_enc, api_secret_enc)
            VALUES (NEW.ex_id, NEW.api_key_enc, NEW.api_secret_enc);
        END IF;
        NEW.created_at := ts AT TIME ZONE 'UTC';
        NEW.updated_at := NEW.created_at;
        RETURN NEW;
    ELSIF TG_OP = 'UPDATE' THEN
        IF (NEW.user_id, NEW.cat_ex_id, NEW.name, NEW.test, NEW.active)
           IS DISTINCT FROM (OLD.user_id, OLD.cat_ex_id, OLD.name, OLD.test, OLD.active) THEN
            UPDATE public.exchanges
               SET uid = NEW.user_id, cat_ex_id = NEW.cat_ex_id, name = NEW.name,
                   test = NEW.test, active = NEW.active
             WHERE ex_id = OLD.ex_id;
        END IF;
        INSERT INTO gateway.exchange_state (ex_id, api_key_enc, api_secret_enc)
        VALUES (OLD.ex_id, NEW.api_key_enc, NEW.api_secret_enc)
        ON CONFLICT (ex_id) DO UPDATE
           SET api_key_enc = excluded.api_key_enc, api_secret_enc = excluded.api_secret_enc,
               updated_at = now();
        RETURN NEW;
    ELSE
        -- Standalone refuses to delete an account that orders or trades refer to
        -- (a foreign key); fullon has none, so the same rule is checked here, with the
        -- row locked first (an order being written holds a key-share lock on it).
        PERFORM 1 FROM public.exchanges WHERE ex_id = OLD.ex_id FOR UPDATE;
        IF EXISTS (SELECT 1 FROM public.orders WHERE ex_id = OLD.ex_id)
           OR EXISTS (SELECT 1 FROM public.trades WHERE ex_id = OLD.ex_id)
           OR EXISTS (SELECT 1 FROM public.dry_trades WHERE ex_id = OLD.ex_id) THEN
            RAISE foreign_key_violation
                  USING MESSAGE = 'update or delete on table "exchanges" violates foreign key '
                                  'constraint "orders_ex_id_user_id_fkey": orders or trades '
                                  'still refer to this exchange account',
                        CONSTRAINT = 'orders_ex_id_user_id_fkey';
        END IF;
        DELETE FROM public.exchanges WHERE ex_id = OLD.ex_id;
        DELETE FROM gateway.exchange_state WHERE ex_id = OLD.ex_id;
        RETURN OLD;
    END IF;
END $$;
CREATE TRIGGER exchanges_write INSTEAD OF INSERT OR UPDATE OR DELETE ON gateway.exchanges
    FOR EACH ROW EXECUTE FUNCTION gateway.exchanges_write();

-- bots -------------------------------------------------------------------------------
CREATE VIEW gateway.bots AS
SELECT b.bot_id,
       b.uid AS user_id,
       b.name::text AS name,
       coalesce((SELECT x.description FROM gateway.bot_state x WHERE x.bot_id = b.bot_id),
                '') AS description,
       coalesce(b.dry_run, false) AS dry_run,
       b.active,
       b."timestamp" AT TIME ZONE 'UTC' AS created_at,
       coalesce((SELECT x.updated_at FROM gateway.bot_state x WHERE x.bot_id = b.bot_id),
                b."timestamp" AT TIME ZONE 'UTC') AS updated_at
  FROM public.bots b;

CREATE FUNCTION gateway.bots_write() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ts timestamp;
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') AND EXISTS (
        SELECT 1 FROM public.bots
         WHERE uid = NEW.user_id AND lower(name) = lower(NEW.name)
           AND (TG_OP = 'INSERT' OR bot_id <> OLD.bot_id)) THEN
        RAISE unique_violation USING MESSAGE = 'a bot with this name exists',
              CONSTRAINT = 'bots_user_name_key';
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO public.bots (uid, name, dry_run, active)
        VALUES (NEW.user_id, NEW.name, coalesce(NEW.dry_run, true), coalesce(NEW.active, false))
        RETURNING bot_id, "timestamp" INTO NEW.bot_id, ts;
        INSERT INTO gateway.bot_state (bot_id, description)
        VALUES (NEW.bot_id, coalesce(NEW.description, ''));
        NEW.created_at := ts AT TIME ZONE 'UTC';
        NEW.updated_at := NEW.created_at;
        RETURN NEW;
    ELSIF TG_OP = 'UPDATE' THEN
        IF (NEW.user_id, NEW.name, NEW.dry_run, NEW.active) IS DISTINCT FROM
           (OLD.user_id, OLD.name, OLD.dry_run, OLD.active) THEN
            UPDATE public.bots SET uid = NEW.user_id, name = NEW.name, dry_run = NEW.dry_run,
                   active = NEW.active
             WHERE bot_id = OLD.bot_id;
        END IF;
        INSERT INTO gateway.bot_state (bot_id, description)
        VALUES (OLD.bot_id, coalesce(NEW.description, ''))
        ON CONFLICT (bot_id) DO UPDATE
           SET description = excluded.description, updated_at = now();
        RETURN NEW;
    ELSE
        -- As standalone's ON DELETE SET NULL: the bot's orders and trades stay in its
        -- owner's history without the bot (0 is "no bot" in fullon's NOT NULL column).
        UPDATE public.orders SET bot_id = 0 WHERE bot_id = OLD.bot_id;
        UPDATE public.dry_trades SET bot_id = 0 WHERE bot_id = OLD.bot_id;
        UPDATE gateway.trade_links SET bot_id = NULL WHERE bot_id = OLD.bot_id;
        DELETE FROM public.bots WHERE bot_id = OLD.bot_id;
        DELETE FROM gateway.bot_state WHERE bot_id = OLD.bot_id;
        RETURN OLD;
    END IF;
END $$;
CREATE TRIGGER bots_write INSTEAD OF INSERT OR UPDATE OR DELETE ON gateway.bots
    FOR EACH ROW EXECUTE FUNCTION gateway.bots_write();

-- bot_exchanges ----------------------------------------------------------------------
-- user_id as a scalar subquery, not a join: a query that does not ask for it (a bot's
-- ex_ids, on every bot listed) does not pay for it.
CREATE VIEW gateway.bot_exchanges AS
SELECT be.bot_id, be.ex_id,
       (SELECT b.uid FROM public.bots b WHERE b.bot_id = be.bot_id) AS user_id
  FROM public.bot_exchanges be;

CREATE FUNCTION gateway.bot_exchanges_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- Both must belong to the same user (standalone: a composite foreign key).
        IF NOT EXISTS (SELECT 1 FROM public.bots WHERE bot_id = NEW.bot_id AND uid = NEW.user_id)
           OR NOT EXISTS (SELECT 1 FROM public.exchanges
                           WHERE ex_id = NEW.ex_id AND uid = NEW.user_id) THEN
            RAISE foreign_key_violation
                  USING MESSAGE = 'the bot and the exchange account must have one owner',
                        CONSTRAINT = 'bot_exchanges_ex_id_user_id_fkey';
        END IF;
        INSERT INTO public.bot_exchanges (bot_id, ex_id) VALUES (NEW.bot_id, NEW.ex_id)
        ON CONFLICT DO NOTHING;
        RETURN NEW;
    ELSIF TG_OP = 'DELETE' THEN
        DELETE FROM public.bot_exchanges WHERE bot_id = OLD.bot_id AND ex_id = OLD.ex_id;
        RETURN OLD;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER bot_exchanges_write INSTEAD OF INSERT OR DELETE ON gateway.bot_exchanges
    FOR EACH ROW EXECUTE FUNCTION gateway.bot_exchanges_write();

-- symbols (per catalog exchange) -----------------------------------------------------
CREATE VIEW gateway.symbols AS
SELECT s.symbol_id,
       s.cat_ex_id,
       s.symbol::text AS symbol,
       @SYMBOL_BASE@ AS base,
       @SYMBOL_QUOTE@ AS quote,
       s.decimals::integer AS decimals,
       s.futures,
       s.updateframe::text AS updateframe,
       s.backtest::integer AS backtest,
       true AS active,
       NULL::timestamptz AS created_at
  FROM public.symbols s;

CREATE FUNCTION gateway.symbols_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO public.symbols (symbol, cat_ex_id, updateframe, backtest, decimals,
                                    futures, @SYMBOL_COLUMNS@)
        VALUES (NEW.symbol, NEW.cat_ex_id, coalesce(NEW.updateframe, '1h'),
                coalesce(NEW.backtest, 30), coalesce(NEW.decimals, 8),
                coalesce(NEW.futures, false), @SYMBOL_VALUES@)
        RETURNING symbol_id INTO NEW.symbol_id;
        RETURN NEW;
    ELSIF TG_OP = 'UPDATE' THEN
        UPDATE public.symbols
           SET symbol = NEW.symbol, cat_ex_id = NEW.cat_ex_id, updateframe = NEW.updateframe,
               backtest = NEW.backtest, decimals = NEW.decimals, futures = NEW.futures,
               @SYMBOL_SET@
         WHERE symbol_id = OLD.symbol_id;
        RETURN NEW;
    ELSE
        DELETE FROM public.symbols WHERE symbol_id = OLD.symbol_id;
        RETURN OLD;
    END IF;
END $$;
CREATE TRIGGER symbols_write INSTEAD OF INSERT OR UPDATE OR DELETE ON gateway.symbols
    FOR EACH ROW EXECUTE FUNCTION gateway.symbols_write();

-- cat_strategies ---------------------------------------------------------------------
CREATE VIEW gateway.cat_strategies AS
SELECT c.cat_str_id,
       c.name::text AS name,
       coalesce((SELECT x.description FROM gateway.cat_strategy_state x
                  WHERE x.cat_str_id = c.cat_str_id), '') AS description,
       coalesce((SELECT x.params FROM gateway.cat_strategy_state x
                  WHERE x.cat_str_id = c.cat_str_id),
                (SELECT jsonb_object_agg(p.name,
                                         jsonb_build_object('type', 'str', 'default', p.value))
                   FROM public.cat_strategies_params p WHERE p.cat_str_id = c.cat_str_id),
                '{}'::jsonb) AS params,
       NULL::timestamptz AS created_at
  FROM public.cat_strategies c;

CREATE FUNCTION gateway.cat_strategies_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO public.cat_strategies (name) VALUES (NEW.name)
        RETURNING cat_str_id INTO NEW.cat_str_id;
        INSERT INTO gateway.cat_strategy_state (cat_str_id, description, params)
        VALUES (NEW.cat_str_id, coalesce(NEW.description, ''), coalesce(NEW.params, '{}'));
        -- fullon's services read each parameter's default from cat_strategies_params.
        INSERT INTO public.cat_strategies_params (cat_str_id, name, value)
        SELECT NEW.cat_str_id, p.key, coalesce(p.value ->> 'default', '')
          FROM jsonb_each(coalesce(NEW.params, '{}')) AS p;
        RETURN NEW;
    ELSIF TG_OP = 'DELETE' THEN
        DELETE FROM public.cat_strategies WHERE cat_str_id = OLD.cat_str_id;
        DELETE FROM gateway.cat_strategy_state WHERE cat_str_id = OLD.cat_str_id;
        RETURN OLD;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER cat_strategies_write INSTEAD OF INSERT OR DELETE ON gateway.cat_strategies
    FOR EACH ROW EXECUTE FUNCTION gateway.cat_strategies_write();

-- bot_strategies (fullon: strategies) ------------------------------------------------
CREATE VIEW gateway.bot_strategies AS
SELECT s.str_id,
       s.bot_id,
       s.cat_str_id,
       s.size::numeric AS size,
       s.leverage::numeric AS leverage,
       coalesce((SELECT x.params FROM gateway.strategy_state x WHERE x.str_id = s.str_id),
                (SELECT jsonb_object_agg(p.name, p.value) FROM public.strategies_params p
                  WHERE p.str_id = s.str_id),
                '{}'::jsonb) AS params,
       NULL::timestamptz AS created_at,
       (SELECT x.updated_at FROM gateway.strategy_state x WHERE x.str_id = s.str_id)
           AS updated_at
  FROM public.strategies s;

CREATE FUNCTION gateway.bot_strategies_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO public.strategies (bot_id, cat_str_id, size, leverage)
        VALUES (NEW.bot_id, NEW.cat_str_id, NEW.size, coalesce(NEW.leverage, 1))
        RETURNING str_id INTO NEW.str_id;
    ELSIF TG_OP = 'UPDATE' THEN
        UPDATE public.strategies
           SET bot_id = NEW.bot_id, cat_str_id = NEW.cat_str_id, size = NEW.size,
               leverage = NEW.leverage
         WHERE str_id = OLD.str_id
           AND (NEW.bot_id, NEW.cat_str_id, NEW.size, NEW.leverage)
               IS DISTINCT FROM (OLD.bot_id, OLD.cat_str_id, OLD.size, OLD.leverage);
        DELETE FROM public.strategies_params WHERE str_id = OLD.str_id;
    ELSE
        DELETE FROM public.strategies WHERE str_id = OLD.str_id;
        DELETE FROM gateway.strategy_state WHERE str_id = OLD.str_id;
        RETURN OLD;
    END IF;
    INSERT INTO gateway.strategy_state (str_id, params)
    VALUES (NEW.str_id, coalesce(NEW.params, '{}'))
    ON CONFLICT (str_id) DO UPDATE SET params = excluded.params, updated_at = now();
    -- What fullon's bots read: one text value per parameter.
    INSERT INTO public.strategies_params (str_id, name, value)
    SELECT NEW.str_id, p.key, p.value #>> '{}' FROM jsonb_each(coalesce(NEW.params, '{}')) AS p;
    RETURN NEW;
END $$;
CREATE TRIGGER bot_strategies_write INSTEAD OF INSERT OR UPDATE OR DELETE
    ON gateway.bot_strategies FOR EACH ROW EXECUTE FUNCTION gateway.bot_strategies_write();

-- bot_feeds (fullon: feeds, which hang off a strategy) --------------------------------
CREATE VIEW gateway.bot_feeds AS
SELECT f.feed_id, s.bot_id, f.symbol_id, f.period::text AS period,
       f.compression::integer AS compression, NULL::timestamptz AS created_at
  FROM public.feeds f JOIN public.strategies s USING (str_id);

CREATE FUNCTION gateway.bot_feeds_write() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    strategy integer;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT min(str_id) INTO strategy FROM public.strategies WHERE bot_id = NEW.bot_id;
        IF strategy IS NULL THEN
            RAISE foreign_key_violation
                  USING MESSAGE = 'in fullon a feed belongs to a strategy: give the bot one first',
                        CONSTRAINT = 'feed_strategies';
        END IF;
        INSERT INTO public.feeds (str_id, symbol_id, period, compression, "order")
        VALUES (strategy, NEW.symbol_id, NEW.period, coalesce(NEW.compression, 1),
                (SELECT coalesce(max("order"), 0) + 1 FROM public.feeds WHERE str_id = strategy))
        RETURNING feed_id INTO NEW.feed_id;
        RETURN NEW;
    ELSIF TG_OP = 'DELETE' THEN
        DELETE FROM public.feeds WHERE feed_id = OLD.feed_id;
        RETURN OLD;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER bot_feeds_write INSTEAD OF INSERT OR DELETE ON gateway.bot_feeds
    FOR EACH ROW EXECUTE FUNCTION gateway.bot_feeds_write();

-- bot_logs (fullon: bot_log, no id column: the microsecond timestamp stands in) ------
CREATE VIEW gateway.bot_logs AS
SELECT (extract(epoch FROM l."timestamp") * 1000000)::bigint AS log_id,
       l.bot_id, l."timestamp" AS ts, 'info'::text AS level, l.message
  FROM public.bot_log l;

CREATE FUNCTION gateway.bot_logs_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.bot_log (bot_id, feed_num, ex_id, symbol, "position", message)
    VALUES (NEW.bot_id, 0,
            coalesce((SELECT min(ex_id) FROM public.bot_exchanges WHERE bot_id = NEW.bot_id), 0),
            '', 0, NEW.message)
    RETURNING "timestamp" INTO NEW.ts;
    NEW.log_id := (extract(epoch FROM NEW.ts) * 1000000)::bigint;
    NEW.level := 'info';
    RETURN NEW;
END $$;
CREATE TRIGGER bot_logs_write INSTEAD OF INSERT ON gateway.bot_logs
    FOR EACH ROW EXECUTE FUNCTION gateway.bot_logs_write();

-- orders -----------------------------------------------------------------------------
CREATE VIEW gateway.orders AS
SELECT o.order_id,
       o.uid AS user_id,
       nullif(o.bot_id, 0) AS bot_id,
       o.ex_id,
       o.symbol::text AS symbol,
       o.side::text AS side,
       o.order_type::text AS order_type,
       o.volume::numeric AS volume,
       o.price::numeric AS price,
       coalesce(o.final_volume, 0)::numeric AS filled,
       o.status::text AS status,
       nullif(o.reason, '')::text AS reason,
       o.ex_order_id::text AS ex_order_id,
       o."timestamp" AT TIME ZONE 'UTC' AS created_at,
       o."timestamp" AT TIME ZONE 'UTC' AS updated_at
  FROM public.orders o;

CREATE FUNCTION gateway.orders_write() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ts timestamp;
    catalog_id integer;
    catalog_name text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- Key-share locks, as a foreign key check takes: deleting the account or the
        -- bot (which locks its row first) waits for this order, or this order for it.
        SELECT e.cat_ex_id, c.name INTO catalog_id, catalog_name
          FROM public.exchanges e JOIN public.cat_exchanges c USING (cat_ex_id)
         WHERE e.ex_id = NEW.ex_id AND e.uid = NEW.user_id
           FOR KEY SHARE OF e;
        IF NEW.bot_id IS NOT NULL THEN
            PERFORM 1 FROM public.bots WHERE bot_id = NEW.bot_id AND uid = NEW.user_id
                FOR KEY SHARE;
        END IF;
        IF catalog_id IS NULL OR (NEW.bot_id IS NOT NULL AND NOT FOUND) THEN
            RAISE foreign_key_violation
                  USING MESSAGE = 'the order''s exchange account and bot must be its owner''s',
                        CONSTRAINT = 'orders_ex_id_user_id_fkey';
        END IF;
        INSERT INTO public.orders (bot_id, uid, ex_id, ex_order_id, cat_ex_id, exchange, symbol,
                                   order_type, side, volume, price, status, reason)
        VALUES (coalesce(NEW.bot_id, 0), NEW.user_id, NEW.ex_id, NEW.ex_order_id, catalog_id,
                catalog_name, NEW.symbol, NEW.order_type, NEW.side, NEW.volume, NEW.price,
                coalesce(NEW.status, 'New'), coalesce(NEW.reason, ''))
        RETURNING order_id, "timestamp" INTO NEW.order_id, ts;
        NEW.status := coalesce(NEW.status, 'New');
        NEW.filled := coalesce(NEW.filled, 0);
        NEW.created_at := ts AT TIME ZONE 'UTC';
        NEW.updated_at := NEW.created_at;
        RETURN NEW;
    ELSIF TG_OP = 'UPDATE' THEN
        -- Only from the status the caller's WHERE saw: a concurrent move wins alone
        -- (standalone gets this from UPDATE re-checking its WHERE on the locked row).
        UPDATE public.orders
           SET status = NEW.status, reason = coalesce(NEW.reason, ''),
               final_volume = NEW.filled, price = NEW.price, ex_order_id = NEW.ex_order_id
         WHERE order_id = OLD.order_id AND status = OLD.status;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
        RETURN NEW;
    ELSE
        DELETE FROM public.orders WHERE order_id = OLD.order_id;
        RETURN OLD;
    END IF;
END $$;
CREATE TRIGGER orders_write INSTEAD OF INSERT OR UPDATE OR DELETE ON gateway.orders
    FOR EACH ROW EXECUTE FUNCTION gateway.orders_write();

-- trades (fullon: trades, live, and dry_trades; dry ids are shifted by 10^12 so both
-- share one id space) -----------------------------------------------------------------
CREATE VIEW gateway.trades AS
SELECT t.trade_id::bigint AS trade_id,
       t.uid AS user_id,
       coalesce(k.bot_id, o.bot_id) AS bot_id,
       t.ex_id,
       coalesce(k.order_id, o.order_id)::bigint AS order_id,
       t.symbol::text AS symbol,
       t.side::text AS side,
       t.volume::numeric AS volume,
       t.price::numeric AS price,
       t.cost::numeric AS cost,
       t.fee::numeric AS fee,
       t.roi::numeric AS roi,
       t.roi_pct::numeric AS roi_pct,
       false AS dry_run,
       t."time" AT TIME ZONE 'UTC' AS ts
  FROM public.trades t
  LEFT JOIN gateway.trade_links k ON k.trade_id = t.trade_id
  LEFT JOIN LATERAL (
        -- fullon links a fill to its order (and so its bot) through ex_order_id.
        SELECT o.order_id, nullif(o.bot_id, 0) AS bot_id FROM public.orders o
         WHERE k.trade_id IS NULL AND o.ex_order_id = t.ex_order_id AND o.uid = t.uid
         ORDER BY o.order_id LIMIT 1) o ON true
UNION ALL
SELECT d.trade_id::bigint + 1000000000000,
       d.uid,
       nullif(d.bot_id, 0),
       d.ex_id,
       NULL::bigint,
       d.symbol::text,
       d.side::text,
       d.volume::numeric,
       d.price::numeric,
       d.cost::numeric,
       d.fee::numeric,
       d.roi::numeric,
       d.roi_pct::numeric,
       true,
       d."timestamp" AT TIME ZONE 'UTC'
  FROM public.dry_trades d;

CREATE FUNCTION gateway.trades_write() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    order_ref text;
    kind text;
    id integer;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        RETURN NULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM public.exchanges WHERE ex_id = NEW.ex_id AND uid = NEW.user_id)
       OR (NEW.bot_id IS NOT NULL AND NOT EXISTS (
               SELECT 1 FROM public.bots WHERE bot_id = NEW.bot_id AND uid = NEW.user_id)) THEN
        RAISE foreign_key_violation
              USING MESSAGE = 'the trade''s exchange account and bot must be its owner''s',
                    CONSTRAINT = 'trades_ex_id_user_id_fkey';
    END IF;
    IF NEW.order_id IS NOT NULL THEN
        SELECT coalesce(ex_order_id, 'gateway-order-' || order_id), order_type
          INTO order_ref, kind FROM public.orders WHERE order_id = NEW.order_id;
        IF order_ref IS NULL THEN
            RAISE foreign_key_violation USING MESSAGE = 'no such order',
                  CONSTRAINT = 'trades_order_id_fkey';
        END IF;
    END IF;
    NEW.ts := coalesce(NEW.ts, now());
    IF NEW.dry_run THEN
        INSERT INTO public.dry_trades (bot_id, uid, ex_id, symbol, side, volume, price, cost,
                                       fee, roi, roi_pct, "timestamp")
        VALUES (coalesce(NEW.bot_id, 0), NEW.user_id, NEW.ex_id, NEW.symbol, NEW.side,
                NEW.volume, NEW.price, NEW.cost, NEW.fee, NEW.roi, NEW.roi_pct,
                NEW.ts AT TIME ZONE 'UTC')
        RETURNING trade_id INTO id;
        NEW.trade_id := id::bigint + 1000000000000;
        NEW.order_id := NULL;
    ELSE
        INSERT INTO public.trades (ex_trade_id, ex_order_id, uid, ex_id, symbol, order_type,
                                   side, volume, price, cost, fee, roi, roi_pct, "time")
        VALUES ('gateway-' || gen_random_uuid(), coalesce(order_ref, ''), NEW.user_id,
                NEW.ex_id, NEW.symbol, coalesce(kind, 'market'), NEW.side, NEW.volume,
                NEW.price, NEW.cost, NEW.fee, NEW.roi, NEW.roi_pct, NEW.ts AT TIME ZONE 'UTC')
        RETURNING trade_id INTO id;
        INSERT INTO gateway.trade_links (trade_id, order_id, bot_id)
        VALUES (id, NEW.order_id, NEW.bot_id);
        NEW.trade_id := id;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER trades_write INSTEAD OF INSERT ON gateway.trades
    FOR EACH ROW EXECUTE FUNCTION gateway.trades_write();
