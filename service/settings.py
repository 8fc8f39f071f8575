"""Typed settings, read once from the environment at start-up and passed down.

No other module reads ``os.environ``. In development, missing secrets are generated once
and kept in ``.data/dev-secrets.json`` so that several workers and restarts agree; in
production a missing secret stops the start-up.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import msgspec

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / ".data"

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/ticket_cart"


# Every variable Settings.from_env reads (deploy manifests are tested against this list).
ENVIRONMENT_VARIABLES = (
    "HOST", "PORT", "REDIS_URL", "REDIS_CLUSTER", "ARQ_REDIS_URL", "DATABASE_URL",
    "ADMIN_API_KEY", "CART_TOKEN_SECRET", "JWT_SECRET", "RESERVATION_TTL_SECONDS",
    "PAYMENT_TTL_SECONDS", "KEY_PREFIX", "APP_ENV", "REDIS_TIMEOUT_SECONDS",
    "DATABASE_TIMEOUT_SECONDS", "DB_POOL_MIN", "DB_POOL_MAX", "DB_STATEMENT_CACHE_SIZE", "REDIS_MAX_CONNECTIONS",
    "MAX_QUANTITY_PER_LINE", "MAX_LINES_PER_CART", "MAX_EVENTS_PER_CART",
    "RATE_LIMIT_PER_MINUTE", "RATE_LIMIT_BURST", "RATE_LIMIT_ADDRESS_PER_MINUTE",
    "RATE_LIMIT_ADDRESS_BURST", "PROMO_ATTEMPTS_PER_MINUTE", "PROMO_ATTEMPTS_ADDRESS_PER_MINUTE",
    "TRUSTED_PROXIES", "TRUSTED_SERVICE_KEY", "CORS_ALLOW_ORIGINS", "LOG_LEVEL", "WORKER_METRICS_PORT",
)
SECRET_VARIABLES = ("ADMIN_API_KEY", "CART_TOKEN_SECRET", "JWT_SECRET", "TRUSTED_SERVICE_KEY")


_SECRET_FIELDS = frozenset({"admin_api_key", "cart_token_secrets", "jwt_secret", "trusted_service_key"})


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:<secret>@{host}"))


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 8000
    redis_url: str = DEFAULT_REDIS_URL
    redis_cluster: bool = False
    # arq keeps its queue here; defaults to REDIS_URL (arq cannot use Redis Cluster).
    arq_redis_url: str | None = None
    database_url: str = DEFAULT_DATABASE_URL
    admin_api_key: str
    # First key signs, every key verifies (rotation).
    cart_token_secrets: tuple[str, ...]
    jwt_secret: str
    reservation_ttl_seconds: int = 900
    payment_ttl_seconds: int = 1800
    key_prefix: str = "tc:"
    app_env: str = "development"
    # Operational limits (documented in the README).
    redis_timeout_seconds: float = 2.0
    database_timeout_seconds: float = 5.0
    db_pool_min: int = 2
    db_pool_max: int = 10
    # Prepared statements kept per connection; 0 behind PgBouncer in transaction mode.
    db_statement_cache_size: int = 256
    redis_max_connections: int = 256
    max_quantity_per_line: int = 50
    max_lines_per_cart: int = 20
    max_events_per_cart: int = 5
    rate_limit_per_minute: int = 600
    rate_limit_burst: int = 100
    # A client address is shared (proxies' clients, carrier-grade NAT): a flood guard,
    # ten times the cart's limits.
    rate_limit_address_per_minute: int = 6000
    rate_limit_address_burst: int = 1000
    promo_attempts_per_minute: int = 10
    promo_attempts_address_per_minute: int = 100
    # Proxies (networks, normalized) whose X-Forwarded-For names the client (service/http/forwarded.py).
    trusted_proxies: tuple[str, ...] = ()
    trusted_service_key: str | None = None
    cors_allow_origins: tuple[str, ...] = ()
    log_level: str = "INFO"
    worker_metrics_port: int = 9108

    def __repr__(self) -> str:
        # A logged or printed Settings never shows a secret, nor a password inside a URL.
        def shown(name: str) -> str:
            value = getattr(self, name)
            if name in _SECRET_FIELDS and value:
                return "<secret>"
            if name.endswith("_url") and value:
                return repr(_without_password(value))
            return repr(value)

        return f"Settings({', '.join(f'{name}={shown(name)}' for name in self.__struct_fields__)})"

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def queue_redis_url(self) -> str:
        return self.arq_redis_url or self.redis_url

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        app_env = env.get("APP_ENV", "development")
        if app_env not in ("development", "production"):
            raise SettingsError(f"APP_ENV must be 'development' or 'production', not {app_env!r}")
        dev_secrets = _DevSecrets(app_env)

        def secret(name: str) -> str:
            value = env.get(name, "").strip()
            if value:
                return value
            if app_env == "production":
                raise SettingsError(f"{name} must be set when APP_ENV=production")
            return dev_secrets.get(name)

        key_prefix = env.get("KEY_PREFIX", "tc:")
        if "{" in key_prefix or "}" in key_prefix:
            raise SettingsError("KEY_PREFIX must not contain '{' or '}' (they form Redis hash tags)")

        return cls(
            host=env.get("HOST", "127.0.0.1"),
            port=_int(env, "PORT", 8000, 1, 65535),
            redis_url=env.get("REDIS_URL") or DEFAULT_REDIS_URL,
            redis_cluster=_bool(env, "REDIS_CLUSTER", False),
            arq_redis_url=env.get("ARQ_REDIS_URL") or None,
            database_url=env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            admin_api_key=secret("ADMIN_API_KEY"),
            cart_token_secrets=tuple(
                s.strip() for s in secret("CART_TOKEN_SECRET").split(",") if s.strip()
            ),
            jwt_secret=secret("JWT_SECRET"),
            reservation_ttl_seconds=_int(env, "RESERVATION_TTL_SECONDS", 900, 1, 86400),
            payment_ttl_seconds=_int(env, "PAYMENT_TTL_SECONDS", 1800, 1, 30 * 86400),
            key_prefix=key_prefix,
            app_env=app_env,
            redis_timeout_seconds=_float(env, "REDIS_TIMEOUT_SECONDS", 2.0),
            database_timeout_seconds=_float(env, "DATABASE_TIMEOUT_SECONDS", 5.0),
            db_pool_min=_int(env, "DB_POOL_MIN", 2, 0, 1000),
            db_pool_max=_int(env, "DB_POOL_MAX", 10, 1, 1000),
            db_statement_cache_size=_int(env, "DB_STATEMENT_CACHE_SIZE", 256, 0, 100000),
            redis_max_connections=_int(env, "REDIS_MAX_CONNECTIONS", 256, 1, 100000),
            max_quantity_per_line=_int(env, "MAX_QUANTITY_PER_LINE", 50, 1, 10000),
            max_lines_per_cart=_int(env, "MAX_LINES_PER_CART", 20, 1, 1000),
            max_events_per_cart=_int(env, "MAX_EVENTS_PER_CART", 5, 1, 100),
            rate_limit_per_minute=_int(env, "RATE_LIMIT_PER_MINUTE", 600, 0, 10**7),
            rate_limit_burst=_int(env, "RATE_LIMIT_BURST", 100, 1, 10**7),
            rate_limit_address_per_minute=_int(env, "RATE_LIMIT_ADDRESS_PER_MINUTE", 6000, 0, 10**7),
            rate_limit_address_burst=_int(env, "RATE_LIMIT_ADDRESS_BURST", 1000, 1, 10**7),
            promo_attempts_per_minute=_int(env, "PROMO_ATTEMPTS_PER_MINUTE", 10, 0, 10**6),
            promo_attempts_address_per_minute=_int(env, "PROMO_ATTEMPTS_ADDRESS_PER_MINUTE", 100, 0, 10**6),
            trusted_proxies=_networks(env, "TRUSTED_PROXIES"),
            trusted_service_key=env.get("TRUSTED_SERVICE_KEY") or None,
            cors_allow_origins=tuple(
                o.strip() for o in env.get("CORS_ALLOW_ORIGINS", "").split(",") if o.strip()
            ),
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
            worker_metrics_port=_int(env, "WORKER_METRICS_PORT", 9108, 0, 65535),
        )


def database_url_from_env(environ: Mapping[str, str] | None = None) -> str:
    """``DATABASE_URL`` alone, as Settings reads it: all the migration runner needs, so it
    runs without the service's secrets (and writes no development secrets)."""
    env = os.environ if environ is None else environ
    return env.get("DATABASE_URL") or DEFAULT_DATABASE_URL


class _DevSecrets:
    """Development-only secrets, generated on first use and shared through a file."""

    path = DATA_DIR / "dev-secrets.json"

    def __init__(self, app_env: str) -> None:
        self._values: dict[str, str] | None = None if app_env == "development" else {}

    def get(self, name: str) -> str:
        if self._values is None:
            self._values = self._load()
        if name not in self._values:
            self._values[name] = secrets.token_urlsafe(32)
            self._save()
        return self._values[name]

    def _load(self) -> dict[str, str]:
        try:
            return dict(json.loads(self.path.read_text()))
        except (OSError, ValueError):
            return {}

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self._values, indent=2))
        os.chmod(tmp, 0o600)
        tmp.replace(self.path)


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, not {raw!r}") from None
    if not lo <= value <= hi:
        raise SettingsError(f"{name} must be between {lo} and {hi}, not {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{name} must be positive, not {value}")
    return value


def _networks(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated addresses or CIDR networks (an address is its own /32 or /128)."""
    networks = []
    for item in env.get(name, "").split(","):
        if item.strip():
            try:
                networks.append(str(ipaddress.ip_network(item.strip())))
            except ValueError:
                raise SettingsError(f"{name} must list IP addresses or networks (CIDR, host bits zero),"
                                    f" not {item.strip()!r}") from None
    return tuple(networks)


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be a boolean (1/0, true/false), not {raw!r}")
