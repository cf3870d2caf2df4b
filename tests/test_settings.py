"""Settings: YAML, then FULLON_* environment, then flags; one clear sentence when wrong."""

from __future__ import annotations

import dataclasses
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from fullon_gateway.settings import Settings, SettingsError, load_settings, with_jwt_secret


@pytest.fixture(autouse=True)
def _no_default_config(tmp_path, monkeypatch):
    """Run from an empty directory, with the per-user data directory (where a default
    gateway.yaml would be found) in this test's own temp dir."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


def _yaml(tmp_path: Path, text: str, name: str = "gateway.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _error(**kw) -> str:
    with pytest.raises(SettingsError) as info:
        load_settings(**kw)
    message = str(info.value)
    assert "\n" not in message and message, message  # one sentence, no traceback
    return message


def test_defaults_without_any_configuration():
    """With no file, no environment and no flags the defaults of docs/contract.md section 1 hold."""
    s = load_settings(environ={})
    assert (s.host, s.port, s.env, s.access_ttl) == ("127.0.0.1", 8000, "development", 900)
    assert s.database_url is None and s.redis_url is None and s.jwt_secret is None
    assert s.production is False


def test_precedence_yaml_then_env_then_overrides(tmp_path):
    """A flag beats the environment, which beats the YAML file, which beats defaults."""
    path = _yaml(tmp_path, "port: 9001\naccess_ttl: 60\nhost: 0.0.0.0\n")
    env = {"FULLON_PORT": "9002", "FULLON_ACCESS_TTL": "120"}
    s = load_settings(config_path=path, environ=env, overrides={"port": 9003})
    assert (s.port, s.access_ttl, s.host) == (9003, 120, "0.0.0.0")
    s = load_settings(config_path=path, environ=env)
    assert (s.port, s.access_ttl) == (9002, 120)
    s = load_settings(config_path=path, environ={})
    assert (s.port, s.access_ttl) == (9001, 60)


def test_override_none_means_not_given(tmp_path):
    """A flag left unset (None) does not clobber the environment's value."""
    s = load_settings(environ={"FULLON_PORT": "9002"}, overrides={"port": None})
    assert s.port == 9002


def test_config_in_the_working_directory_is_not_read(tmp_path, monkeypatch):
    """config/gateway.yaml (or gateway.yaml) in the current directory is ignored: where a
    process starts must not change what it runs with. With no file named and none in the
    state directory, the checkout's own config/gateway.yaml (the contract's file, found
    beside the package) is the one read, whatever the working directory."""
    (tmp_path / "config").mkdir()
    _yaml(tmp_path / "config", "port: 8123\n")
    _yaml(tmp_path, "port: 8124\n")
    monkeypatch.chdir(tmp_path)
    s = load_settings(environ={})
    checkout = Path(__file__).resolve().parents[1] / "config" / "gateway.yaml"
    assert s.port == 8000 and s.config_file == str(checkout)
    monkeypatch.chdir("/")
    assert load_settings(environ={}).config_file == str(checkout)


def test_state_dir_gateway_yaml_wins_over_the_checkout_config(tmp_path):
    """A gateway.yaml in the state directory is read instead of the checkout's
    config/gateway.yaml, so an operator's file beats the annotated template."""
    state = tmp_path / "state"
    state.mkdir()
    path = _yaml(state, "port: 8126\n")
    s = load_settings(environ={"FULLON_STATE_DIR": str(state)})
    assert (s.port, s.config_file) == (8126, str(path))


def test_state_dir_defaults_to_the_per_user_data_directory(tmp_path, monkeypatch):
    """With nothing set, the state directory is platformdirs' per-user data directory
    (under XDG_DATA_HOME on Linux), absolute, and the same from any working directory."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    here = load_settings(environ={})
    monkeypatch.chdir("/")
    there = load_settings(environ={})
    assert here.state_dir == there.state_dir == str(tmp_path / "data" / "fullon_gateway")


def test_gateway_yaml_in_the_state_dir_is_read(tmp_path):
    """gateway.yaml in the state directory is read without being named, and recorded as
    the config file; it may not move the state directory it lives in."""
    state = tmp_path / "state"
    state.mkdir()
    path = _yaml(state, "port: 8125\n")
    s = load_settings(environ={"FULLON_STATE_DIR": str(state)})
    assert s.port == 8125 and s.config_file == str(path)
    assert load_settings(environ={}, overrides={"state_dir": str(state)}).port == 8125
    _yaml(state, "state_dir: elsewhere\n")
    assert "cannot move the state directory" in _error(environ={"FULLON_STATE_DIR": str(state)})


def test_relative_state_dir_is_made_absolute(tmp_path, monkeypatch):
    """A relative state_dir from a flag or the environment is resolved against the
    working directory once; one in a named config file against that file's directory."""
    monkeypatch.chdir(tmp_path)
    assert load_settings(environ={"FULLON_STATE_DIR": "st"}).state_dir == str(tmp_path / "st")
    conf = tmp_path / "conf"
    conf.mkdir()
    path = _yaml(conf, "state_dir: data\n")
    assert load_settings(config_path=path, environ={}).state_dir == str(conf / "data")


def test_fullon_config_names_the_file(tmp_path):
    """FULLON_CONFIG points at another YAML file."""
    path = _yaml(tmp_path, "log_level: DEBUG\n", "other.yaml")
    assert load_settings(environ={"FULLON_CONFIG": str(path)}).log_level == "DEBUG"


def test_env_values_are_coerced_to_field_types():
    """Environment strings become ints, floats, bools; an empty URL means unset."""
    s = load_settings(environ={
        "FULLON_PORT": " 8080 ", "FULLON_GRACE_PERIOD": "2.5", "FULLON_WS_COMPRESS": "yes",
        "FULLON_DATABASE_URL": "", "FULLON_REDIS_URL": "redis://h:1/2",
        "FULLON_ENV": "production", "FULLON_JWT_SECRET": "s" * 32,
    })
    assert (s.port, s.grace_period, s.ws_compress) == (8080, 2.5, True)
    assert s.database_url is None and s.redis_url == "redis://h:1/2"
    assert s.production is True and s.jwt_secret == "s" * 32
    assert load_settings(environ={"FULLON_WS_COMPRESS": "off"}).ws_compress is False


def test_yaml_values_keep_native_types(tmp_path):
    """YAML booleans and numbers are taken as they are; null means unset."""
    path = _yaml(tmp_path, "ws_compress: true\nport: 8001\ngrace_period: 3\n"
                           "database_url: null\n")
    s = load_settings(config_path=path, environ={})
    assert (s.ws_compress, s.port, s.grace_period, s.database_url) == (True, 8001, 3.0, None)


def test_empty_yaml_file_is_fine(tmp_path):
    """An empty config file means defaults."""
    assert load_settings(config_path=_yaml(tmp_path, ""), environ={}) == Settings()


@pytest.mark.parametrize("env,words", [
    ({"FULLON_PORT": "eighty"}, ["port", "eighty"]),
    ({"FULLON_PORT": "0"}, ["port", "65535"]),
    ({"FULLON_PORT": "70000"}, ["port"]),
    ({"FULLON_GRACE_PERIOD": "soon"}, ["grace_period"]),
    ({"FULLON_WS_COMPRESS": "maybe"}, ["ws_compress"]),
    ({"FULLON_ENV": "staging"}, ["env", "staging"]),
    ({"FULLON_DATABASE_URL": "mysql://x"}, ["database_url", "postgresql://"]),
    ({"FULLON_REDIS_URL": "http://x"}, ["redis_url"]),
    ({"FULLON_JWT_ALGORITHM": "RS256"}, ["jwt_algorithm", "RS256"]),
    ({"FULLON_JWT_ALGORITHM": "none"}, ["jwt_algorithm"]),
    ({"FULLON_JWT_SECRET": "short"}, ["jwt_secret", "32"]),
    ({"FULLON_ACCESS_TTL": "0"}, ["access_ttl", "greater than zero"]),
    ({"FULLON_LOGIN_MAX_FAILURES": "-1"}, ["login_max_failures"]),
    ({"FULLON_MAX_BODY_BYTES": "0"}, ["max_body_bytes"]),
    ({"FULLON_API_KEY_TOUCH_INTERVAL": "0"}, ["api_key_touch_interval", "greater than zero"]),
    ({"FULLON_DEPENDENCY_TIMEOUT": "-1"}, ["dependency_timeout"]),
    ({"FULLON_GRACE_PERIOD": "-1"}, ["grace_period", "negative"]),
    ({"FULLON_DB_POOL_MIN": "5", "FULLON_DB_POOL_MAX": "2"}, ["db_pool_min", "db_pool_max"]),
    ({"FULLON_ARGON2_TIME_COST": "0"}, ["argon2_time_cost"]),
    ({"FULLON_ARGON2_MEMORY_KIB": "4"}, ["argon2_memory_kib"]),
    ({"FULLON_EMBEDDED": "sometimes"}, ["embedded", "sometimes"]),
    ({"FULLON_EXCHANGE_SECRETS_KEY": "not-a-key"}, ["exchange_secrets_key", "Fernet"]),
])
def test_invalid_environment_values_give_one_clear_sentence(env, words):
    """Each invalid value stops loading with a SettingsError naming the setting."""
    message = _error(environ=env)
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("text,words", [
    ("port: [1, 2]\n", ["port"]),
    ("port: 8000.5\n", ["port", "8000.5"]),
    ("login_max_failures: true\n", ["login_max_failures"]),
    ("grace_period: true\n", ["grace_period"]),
    ("port: 8000\nnot_a_setting: 1\n", ["not_a_setting"]),
    ("- a\n- b\n", ["mapping"]),
    ("port: [unclosed\n", ["YAML"]),
])
def test_invalid_yaml_gives_one_clear_sentence(tmp_path, text, words):
    """Wrong types, unknown keys, non-mappings and broken YAML are SettingsErrors."""
    message = _error(config_path=_yaml(tmp_path, text), environ={})
    for word in words:
        assert word in message, message


def test_whole_float_is_accepted_for_an_integer(tmp_path):
    """A YAML 8000.0 is the integer 8000; only a real fraction is refused."""
    assert load_settings(config_path=_yaml(tmp_path, "port: 8000.0\n"), environ={}).port == 8000


def test_named_config_file_must_exist(tmp_path):
    """A config file named explicitly but missing is an error, not silently ignored."""
    message = _error(config_path=tmp_path / "missing.yaml", environ={})
    assert "missing.yaml" in message and "does not exist" in message


def test_fullon_config_naming_a_missing_file_is_an_error(tmp_path):
    """FULLON_CONFIG pointing at a missing file is refused, not silently ignored."""
    message = _error(environ={"FULLON_CONFIG": str(tmp_path / "typo.yml")})
    assert "typo.yml" in message and "does not exist" in message


def test_unknown_override_is_refused():
    """A flag for a setting that does not exist is refused."""
    assert "bogus" in _error(environ={}, overrides={"bogus": 1})


def test_settings_are_frozen():
    """Settings cannot be changed after loading (one source of truth per process)."""
    s = load_settings(environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.port = 1  # type: ignore[misc]


def test_production_without_secret_is_refused(tmp_path):
    """FULLON_ENV=production with no FULLON_JWT_SECRET refuses to start, saying why,
    and writes nothing to the state directory."""
    s = load_settings(environ={"FULLON_ENV": "production",
                               "FULLON_STATE_DIR": str(tmp_path / "state")})
    with pytest.raises(SettingsError) as info:
        with_jwt_secret(s)
    assert "FULLON_JWT_SECRET" in str(info.value) and "production" in str(info.value)
    assert not (tmp_path / "state").exists()


def test_production_with_secret_uses_it(tmp_path):
    """A configured secret is used as is, in production and development alike."""
    secret = "p" * 40
    s = load_settings(environ={"FULLON_ENV": "production", "FULLON_JWT_SECRET": secret,
                               "FULLON_STATE_DIR": str(tmp_path / "state")})
    assert with_jwt_secret(s).jwt_secret == secret
    assert not (tmp_path / "state").exists()


def test_development_generates_a_private_secret_and_reuses_it(tmp_path):
    """Development without a secret generates one in state_dir (mode 0600, long enough
    for every allowed algorithm) and the next start reads the same one back."""
    state = tmp_path / "state" / "nested"
    s = load_settings(environ={"FULLON_STATE_DIR": str(state)})
    first = with_jwt_secret(s)
    secret_file = state / "jwt_secret"
    assert secret_file.exists()
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert first.jwt_secret == secret_file.read_text().strip()
    assert len(first.jwt_secret) >= 64
    again = with_jwt_secret(load_settings(environ={"FULLON_STATE_DIR": str(state)}))
    assert again.jwt_secret == first.jwt_secret
    assert sorted(p.name for p in state.iterdir()) == ["jwt_secret"]  # no temp files left


CHILD = (
    "from fullon_gateway.settings import load_settings, with_jwt_secret\n"
    "print(with_jwt_secret(load_settings()).jwt_secret)\n"
)


def test_processes_starting_together_agree_on_one_secret(tmp_path):
    """Several processes generating the secret at once all end up with the same one."""
    # Plain subprocesses, all waited for: a multiprocessing "spawn" context would leave
    # its resource-tracker process running past the test session.
    env = {**os.environ, "FULLON_STATE_DIR": str(tmp_path / "state")}
    procs = [subprocess.Popen([sys.executable, "-c", CHILD], env=env, stdout=subprocess.PIPE,
                              text=True) for _ in range(4)]
    secrets = set()
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        secrets.add(out.strip())
    assert len(secrets) == 1
    assert secrets == {(tmp_path / "state" / "jwt_secret").read_text().strip()}


def test_environment_is_read_from_os_environ_by_default(monkeypatch):
    """Without an explicit environ mapping, the process environment is used."""
    monkeypatch.setenv("FULLON_PORT", "8765")
    assert load_settings().port == 8765
    assert os.environ["FULLON_PORT"] == "8765"


@pytest.mark.parametrize("algorithm,length", [("HS256", 32), ("HS384", 48), ("HS512", 64)])
def test_secret_must_match_the_algorithm_strength(algorithm, length):
    """The HMAC secret must be at least as long as the hash output (RFC 7518 3.2)."""
    env = {"FULLON_JWT_ALGORITHM": algorithm}
    message = _error(environ=env | {"FULLON_JWT_SECRET": "k" * (length - 1)})
    assert str(length) in message and algorithm in message
    s = load_settings(environ=env | {"FULLON_JWT_SECRET": "k" * length})
    assert s.jwt_algorithm == algorithm


def test_valid_fernet_key_is_accepted():
    """A real Fernet key is accepted as exchange_secrets_key."""
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    assert load_settings(environ={"FULLON_EXCHANGE_SECRETS_KEY": key}).exchange_secrets_key == key


def test_the_repository_template_is_valid_and_moves_no_state():
    """config/gateway.yaml (the annotated template) loads when passed with --config and
    leaves the state directory at its default."""
    template = Path(__file__).resolve().parents[1] / "config" / "gateway.yaml"
    s = load_settings(config_path=template, environ={})
    assert s.config_file == str(template)
    assert s.state_dir == load_settings(environ={}).state_dir
