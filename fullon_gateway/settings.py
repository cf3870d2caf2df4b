"""Settings: a YAML file, then FULLON_* environment variables, then flags.

Everything the gateway can be told lives in one frozen dataclass. Loading validates
every value and stops with one clear sentence (SettingsError) instead of a traceback.

Nothing depends on the current directory. The state directory (generated JWT secret,
embedded Postgres and Redis data) is ``--state-dir``, else ``FULLON_STATE_DIR``, else a
``state_dir`` in the file named by ``--config``/``FULLON_CONFIG``, else the per-user data
directory (``platformdirs``: ``~/.local/share/fullon_gateway`` on Linux). The YAML file
read is the one named by ``--config``/``FULLON_CONFIG``, else ``gateway.yaml`` in the
state directory when it exists, else the checkout's own ``config/gateway.yaml`` (the file
the wire contract names: found next to the package, never relative to the current
directory; a non-editable install has none).
Over 300 lines on purpose: every setting, its default and its validation in one file.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import platformdirs
import yaml
from cryptography.fernet import Fernet

ENV_PREFIX = "FULLON_"
APP_NAME = "fullon_gateway"
CONFIG_NAME = "gateway.yaml"  # looked up in the state directory
# The contract's config/gateway.yaml, beside the package in a checkout (editable install).
CHECKOUT_CONFIG = Path(__file__).resolve().parents[1] / "config" / CONFIG_NAME


def default_state_dir() -> str:
    """The per-user data directory (XDG_DATA_HOME on Linux, so tests can redirect it)."""
    return str(Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)))


class SettingsError(ValueError):
    """Invalid configuration; the message is one sentence fit for an operator."""


@dataclass(frozen=True)
class Settings:
    # Where and how to serve.
    host: str = "127.0.0.1"
    port: int = 8000
    env: str = "development"
    log_level: str = "INFO"
    grace_period: float = 10.0
    # Dependencies. None means: use the local default port if it answers, else embedded.
    database_url: str | None = None
    redis_url: str | None = None
    # With no URL: "auto" uses the local default port when it answers, else starts an
    # embedded server; "always" skips the local probe; "never" refuses to start one.
    embedded: str = "auto"
    # Where "the local default ports" are (probed when no URL is set). Tests point them
    # at closed ports to play a machine with no Postgres or Redis.
    local_postgres_url: str = "postgresql://postgres@127.0.0.1:5432/fullon_gateway"
    local_redis_url: str = "redis://127.0.0.1:6379/0"
    # Prefix for every Redis key and channel this gateway reads or writes, so that two
    # environments (or two test workers) can share one Redis server. Empty in production
    # so the names match fullon_cache exactly.
    redis_prefix: str = ""
    # Seconds the pub/sub connection may be silent before the hub pings Redis; one that
    # stays silent through two pings is dropped and replaced (a partition or a lost NAT
    # entry sends no EOF), and the streams resync.
    redis_idle_ping: float = 5.0
    # Absolute after load_settings; see the module docstring for how it is found.
    state_dir: str = field(default_factory=default_state_dir)
    db_pool_min: int = 2
    db_pool_max: int = 10
    # Redis command connections per process (pub/sub has its own); snapshot reads are
    # batched, so a subscribe storm needs few of them.
    redis_pool_size: int = 64
    dependency_timeout: float = 2.0
    # Tokens.
    jwt_secret: str | None = None
    jwt_algorithm: str = "HS256"
    access_ttl: int = 900
    refresh_ttl: int = 30 * 24 * 3600
    # Password hashing (argon2id) at OWASP's recommended minimum (19 MiB, t=2, p=1):
    # ~20 ms a hash here. Tests lower the cost; raising it slows every login.
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19456
    argon2_parallelism: int = 1
    # Login throttling: failures allowed per window, per account and per client address.
    login_max_failures: int = 5  # one account from one address
    login_max_failures_per_account: int = 50  # one account from all addresses
    login_max_failures_per_address: int = 1000  # one address over all accounts (NAT)
    login_window: int = 300
    # How long an authenticated identity (user, session, api key) is trusted from the
    # process cache before it is re-read; invalidations over Redis usually come first.
    auth_cache_ttl: float = 30.0
    # Entries per identity cache (sessions, API keys) and verified access tokens kept
    # before the cache is reset / its oldest entry evicted; tests shrink them.
    auth_cache_max: int = 100_000
    token_cache_max: int = 10_000
    api_key_touch_interval: float = 60.0
    # HTTP limits.
    max_body_bytes: int = 1024 * 1024
    # Seconds a request body may take to arrive in full (408 after), and an idle
    # keep-alive connection (or one still sending its headers) stays open.
    body_timeout: float = 30.0
    keepalive_timeout: float = 15.0
    # Open connections: per client address (0 = no cap; behind a load balancer every
    # connection comes from its address) and in total (0 = the file limit less a
    # reserve for Postgres, Redis and logs). Past either, one JSON 503 and a close.
    max_connections: int = 0
    max_connections_per_address: int = 256
    # Comma-separated addresses of load balancers in front (e.g. "127.0.0.1"): their
    # connections skip the per-address cap, and the client address (login throttling)
    # is read from their X-Forwarded-For. Empty: every peer is a client.
    trusted_proxies: str = ""
    # Resource errors (out of file descriptors...) are logged once per interval, with
    # a count of how many happened.
    resource_log_interval: float = 10.0
    # WebSocket limits (docs/contract.md section 7); tests shrink them.
    ws_max_frame: int = 64 * 1024
    ws_max_subscriptions: int = 256
    ws_rate_limit: int = 50
    ws_heartbeat: float = 20.0
    ws_auth_timeout: float = 10.0
    ws_queue_limit: int = 1000
    ws_compress: bool = False
    ws_revocation_check: float = 1.0
    # Serve on uvloop (a faster event loop, C transports) when it is installed.
    uvloop: bool = True
    history_len: int = 1000
    # fullon writes that are not announced (orders, accounts, bots, trades, ohlcv,
    # process) are learnt from Redis keyspace notifications: "configure" turns the
    # flags on with CONFIG SET (merged with those set), "check" only reads them, "off"
    # watches tickers (which fullon publishes) only. docs/operations.md.
    keyspace_events: str = "configure"
    # Days of random-walk trade history `demo` loads for the OHLCV endpoints.
    demo_history_days: float = 30.0
    # Seconds one /api/v1/markets answer (a SCAN of Redis) serves every caller; 0: each
    # call reads again (concurrent calls still share one read).
    markets_cache_ttl: float = 5.0
    # Seconds a quote may go unchanged before the dashboard marks it stale (each
    # trader can change it in the page; this is the default it starts with).
    dashboard_stale_after: float = 10.0
    # Fernet key (urlsafe base64 of 32 bytes) that encrypts exchange API credentials.
    # Unset: the gateway refuses credentials instead of storing them in the clear.
    exchange_secrets_key: str | None = None
    # In front of a fullon platform (attach mode), the user with this e-mail is an admin
    # whatever its role, as fullon's ADMIN_MAIL says.
    admin_mail: str = "admin@fullon"
    # The YAML file that was read (absolute), or None; set by load_settings, not a setting.
    config_file: str | None = field(default=None, compare=False)

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def proxies(self) -> frozenset[str]:
        return frozenset(a.strip() for a in self.trusted_proxies.split(",") if a.strip())


_FIELDS = {f.name: f for f in fields(Settings) if f.name != "config_file"}


def _coerce(name: str, raw: Any) -> Any:
    """Turn a YAML/env/flag value into the field's type, or say why it cannot be."""
    spec = _FIELDS[name]
    default = spec.default if spec.default is not dataclasses.MISSING else ""
    kind = type(default) if default is not None else str
    if raw is None:
        return None
    if isinstance(raw, str) and raw.strip() == "" and default is None:
        return None
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise ValueError(text)
        if kind is int:
            # int(8000.5) would silently drop the fraction of a YAML float.
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError(raw)
            return int(raw)
        if kind is float:
            if isinstance(raw, bool):  # float(True) would quietly be 1.0
                raise ValueError(raw)
            return float(raw)
        return str(raw)
    except (TypeError, ValueError):
        raise SettingsError(
            f"setting {name!r} must be a {kind.__name__}, got {raw!r}"
        ) from None


def _validate(s: Settings) -> None:
    if s.env not in {"development", "production"}:
        raise SettingsError(f"env must be 'development' or 'production', got {s.env!r}")
    if s.embedded not in {"auto", "always", "never"}:
        raise SettingsError(f"embedded must be auto, always or never, got {s.embedded!r}")
    if s.keyspace_events not in {"configure", "check", "off"}:
        raise SettingsError(
            f"keyspace_events must be configure, check or off, got {s.keyspace_events!r}")
    if not 0 < s.port < 65536:
        raise SettingsError(f"port must be between 1 and 65535, got {s.port}")
    for name in ("database_url", "local_postgres_url"):
        value = getattr(s, name)
        if value and not value.startswith(("postgresql://", "postgres://")):
            raise SettingsError(f"{name} must start with postgresql://")
    for name in ("redis_url", "local_redis_url"):
        value = getattr(s, name)
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError(f"{name} must start with redis://, rediss:// or unix://")
    if s.jwt_algorithm not in {"HS256", "HS384", "HS512"}:
        raise SettingsError(f"jwt_algorithm must be HS256, HS384 or HS512, got {s.jwt_algorithm}")
    # RFC 7518 3.2: an HMAC key at least as long as the hash (PyJWT warns on every
    # token otherwise): 32 characters for HS256, 48 for HS384, 64 for HS512.
    min_secret = int(s.jwt_algorithm[2:]) // 8
    if s.jwt_secret is not None and len(s.jwt_secret) < min_secret:
        raise SettingsError(
            f"jwt_secret must be at least {min_secret} characters long for {s.jwt_algorithm}"
        )
    if s.exchange_secrets_key is not None:
        try:
            Fernet(s.exchange_secrets_key)
        except (ValueError, TypeError):
            raise SettingsError(
                "exchange_secrets_key must be a Fernet key (urlsafe base64 of 32 bytes; "
                "generate one with cryptography.fernet.Fernet.generate_key())"
            ) from None
    for name in ("access_ttl", "refresh_ttl", "login_window", "max_body_bytes",
                 "ws_max_frame", "ws_max_subscriptions", "ws_rate_limit",
                 "ws_queue_limit", "history_len", "login_max_failures",
                 "login_max_failures_per_account", "login_max_failures_per_address",
                 "redis_pool_size", "db_pool_max", "auth_cache_max", "token_cache_max"):
        if getattr(s, name) <= 0:
            raise SettingsError(f"{name} must be greater than zero")
    # Zero here would mean a busy loop (the key-usage flusher sleeping 0 s), checks
    # that always time out, or a hasher that cannot start.
    for name in ("dependency_timeout", "api_key_touch_interval", "ws_heartbeat",
                 "ws_auth_timeout", "ws_revocation_check", "argon2_time_cost",
                 "argon2_parallelism", "dashboard_stale_after", "redis_idle_ping"):
        if getattr(s, name) <= 0:
            raise SettingsError(f"{name} must be greater than zero")
    for name in ("body_timeout", "keepalive_timeout", "resource_log_interval"):
        if getattr(s, name) <= 0:
            raise SettingsError(f"{name} must be greater than zero")
    for name in ("grace_period", "auth_cache_ttl", "db_pool_min", "max_connections",
                 "max_connections_per_address", "markets_cache_ttl"):
        if getattr(s, name) < 0:
            raise SettingsError(f"{name} must not be negative")
    if s.db_pool_min > s.db_pool_max:
        raise SettingsError(
            f"db_pool_min ({s.db_pool_min}) must not exceed db_pool_max ({s.db_pool_max})"
        )
    if s.argon2_memory_kib < 8 * s.argon2_parallelism:
        raise SettingsError("argon2_memory_kib must be at least 8 times argon2_parallelism")


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        # str(exc) spans several lines with a source excerpt; keep it to one sentence.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise SettingsError(f"config file {path} is not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"config file {path} must hold a mapping of settings")
    return data


def load_settings(
    config_path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Layer YAML, environment and flag values over the defaults, then validate."""
    environ = os.environ if environ is None else environ
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    named = config_path or environ.get(ENV_PREFIX + "CONFIG")
    chosen_state = overrides.get("state_dir") or environ.get(ENV_PREFIX + "STATE_DIR")
    if named:
        path = Path(named).expanduser().resolve()
    else:
        path = Path(chosen_state or default_state_dir()).expanduser().resolve() / CONFIG_NAME
        if not path.is_file() and CHECKOUT_CONFIG.is_file():
            path, named = CHECKOUT_CONFIG, str(CHECKOUT_CONFIG)
    values: dict[str, Any] = {}
    read = path.is_file()
    if read:
        for key, raw in _read_yaml(path).items():
            if key not in _FIELDS:
                raise SettingsError(f"unknown setting {key!r} in {path}")
            values[key] = _coerce(key, raw)
        if "state_dir" in values:
            if not named:
                raise SettingsError(
                    f"{path} cannot move the state directory it lives in; "
                    "use --state-dir or FULLON_STATE_DIR instead")
            # A relative state_dir in a file is relative to that file, not to the cwd.
            values["state_dir"] = str(path.parent / Path(values["state_dir"]).expanduser())
    elif named:  # a file asked for by name (flag or FULLON_CONFIG) must be there
        raise SettingsError(f"config file {path} does not exist")
    for name in _FIELDS:
        env_name = ENV_PREFIX + name.upper()
        if env_name in environ:
            values[name] = _coerce(name, environ[env_name])
    for key, raw in overrides.items():
        if key not in _FIELDS:
            raise SettingsError(f"unknown setting {key!r}")
        values[key] = _coerce(key, raw)
    state = values.get("state_dir") or default_state_dir()
    values["state_dir"] = str(Path(state).expanduser().resolve())
    settings = Settings(**values, config_file=str(path) if read else None)
    _validate(settings)
    return settings


def with_jwt_secret(settings: Settings) -> Settings:
    """Return settings that carry a JWT secret.

    Production must be given one: a generated secret would differ per process and
    silently log everybody out on restart. Development generates one once and keeps it
    in the state directory, readable only by its owner.
    """
    if settings.jwt_secret:
        return settings
    if settings.production:
        raise SettingsError(
            "FULLON_JWT_SECRET is required when FULLON_ENV=production "
            "(at least 32 random characters)"
        )
    state = Path(settings.state_dir)
    state.mkdir(parents=True, exist_ok=True)
    secret_file = state / "jwt_secret"
    if not secret_file.exists():
        # Write a private temp file, then link it into place: os.link fails if another
        # process got there first, so every process ends up reading the same secret.
        tmp = state / f".jwt_secret.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
        try:
            os.link(tmp, secret_file)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return dataclasses.replace(settings, jwt_secret=secret_file.read_text().strip())
