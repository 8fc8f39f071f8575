"""Typed settings, read once from the environment at start-up and passed down.

No other module reads ``os.environ``. Each setting is declared once, as a field of
``Settings``: its variable (the field's name in capitals unless ``name=`` says otherwise),
type, bounds (msgspec ``Meta``) and default; ``from_env``, ``ENVIRONMENT_VARIABLES`` and
the secret lists follow from the fields. A missing secret stops the start-up, in
development too: there ``make run`` fills them in (``devtools.dev_secrets``).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

import msgspec
import msgspec.inspect
from msgspec import Meta

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/ticket_cart"


def _networks(raw: str) -> tuple[str, ...]:
    """Comma-separated addresses or CIDR networks (an address is its own /32 or /128)."""
    return tuple(str(ipaddress.ip_network(item.strip())) for item in raw.split(",") if item.strip())


# Meta(extra=...) keys read by from_env: "secret" (never shown; required ones stop the
# start-up when missing), "parse" (the variable's text to the field's value), "expected"
# (what an error message says the value must be).
_SECRET: dict[str, Any] = {"secret": True}
Secret = Annotated[str, Meta(min_length=1, extra=_SECRET)]


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, rename="upper"):
    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=1, le=65535)] = 8000
    redis_url: str = DEFAULT_REDIS_URL
    redis_cluster: bool = False
    # arq keeps its queue here; defaults to REDIS_URL (arq cannot use Redis Cluster).
    arq_redis_url: str | None = None
    database_url: str = DEFAULT_DATABASE_URL
    admin_api_key: Secret
    # First key signs, every key verifies (rotation).
    cart_token_secrets: Annotated[tuple[str, ...], Meta(min_length=1, extra=_SECRET)] = msgspec.field(
        name="CART_TOKEN_SECRET"
    )
    jwt_secret: Secret
    reservation_ttl_seconds: Annotated[int, Meta(ge=1, le=86400)] = 900
    payment_ttl_seconds: Annotated[int, Meta(ge=1, le=30 * 86400)] = 1800
    key_prefix: Annotated[
        str, Meta(pattern=r"^[^{}]*$", extra={"expected": "free of '{' and '}' (they form Redis hash tags)"})
    ] = "tc:"
    app_env: Literal["development", "production"] = "development"
    # Operational limits (documented in the README).
    redis_timeout_seconds: Annotated[float, Meta(gt=0)] = 2.0
    database_timeout_seconds: Annotated[float, Meta(gt=0)] = 5.0
    db_pool_min: Annotated[int, Meta(ge=0, le=1000)] = 2
    db_pool_max: Annotated[int, Meta(ge=1, le=1000)] = 10
    # Prepared statements kept per connection; 0 behind PgBouncer in transaction mode.
    db_statement_cache_size: Annotated[int, Meta(ge=0, le=100000)] = 256
    redis_max_connections: Annotated[int, Meta(ge=1, le=100000)] = 256
    max_quantity_per_line: Annotated[int, Meta(ge=1, le=10000)] = 50
    max_lines_per_cart: Annotated[int, Meta(ge=1, le=1000)] = 20
    max_events_per_cart: Annotated[int, Meta(ge=1, le=100)] = 5
    rate_limit_per_minute: Annotated[int, Meta(ge=0, le=10**7)] = 600
    rate_limit_burst: Annotated[int, Meta(ge=1, le=10**7)] = 100
    # A client address is shared (proxies' clients, carrier-grade NAT): a flood guard,
    # ten times the cart's limits.
    rate_limit_address_per_minute: Annotated[int, Meta(ge=0, le=10**7)] = 6000
    rate_limit_address_burst: Annotated[int, Meta(ge=1, le=10**7)] = 1000
    promo_attempts_per_minute: Annotated[int, Meta(ge=0, le=10**6)] = 10
    promo_attempts_address_per_minute: Annotated[int, Meta(ge=0, le=10**6)] = 100
    # Proxies (networks, normalized) whose X-Forwarded-For names the client (service/http/forwarded.py).
    trusted_proxies: Annotated[
        tuple[str, ...], Meta(extra={"parse": _networks, "expected": "IP addresses or networks (CIDR, host bits zero)"})
    ] = ()
    trusted_service_key: Annotated[str | None, Meta(extra=_SECRET)] = None
    cors_allow_origins: tuple[str, ...] = ()
    log_level: Annotated[str, Meta(extra={"parse": str.upper})] = "INFO"
    worker_metrics_port: Annotated[int, Meta(ge=0, le=65535)] = 9108
    # Order events out (docs/events.md): the time one webhook attempt may take, all of it;
    # then retries after base * 2**(n-1) seconds, capped at the max delay, jittered, for
    # WEBHOOK_RETRY_FOR_SECONDS after the delivery was made (or replayed), then failed.
    webhook_timeout_seconds: Annotated[float, Meta(gt=0, le=60)] = 5.0
    webhook_retry_base_seconds: Annotated[int, Meta(ge=1, le=3600)] = 10
    webhook_retry_max_delay_seconds: Annotated[int, Meta(ge=1, le=86400)] = 21600
    webhook_retry_for_seconds: Annotated[int, Meta(ge=60, le=30 * 86400)] = 259200
    # SePay bank-transfer notifications (docs/payments.md): how POST /api/payments/sepay
    # authenticates them; off: the route answers 404. The mode's secret is then required.
    sepay_auth: Literal["off", "apikey", "hmac"] = "off"
    sepay_api_key: Annotated[str | None, Meta(extra=_SECRET)] = None
    sepay_hmac_secret: Annotated[str | None, Meta(extra=_SECRET)] = None
    # A transfer dated up to this long after an order's due time is on time.
    payment_grace_seconds: Annotated[int, Meta(ge=0, le=86400)] = 120
    # The account buyers transfer to: shown with each order's payment (and a VietQR image)
    # when PAYMENT_BANK_ID and PAYMENT_ACCOUNT_NUMBER are both set; a SePay transfer to
    # another account number is kept for review.
    payment_bank_id: Annotated[
        Annotated[str, Meta(pattern=r"^[A-Za-z0-9]{1,40}$")] | None,
        Meta(extra={"expected": "a bank BIN or VietQR short name (letters and digits)"}),
    ] = None
    payment_bank_name: Annotated[str, Meta(max_length=100)] | None = None
    payment_account_number: Annotated[
        Annotated[str, Meta(pattern=r"^[A-Za-z0-9]{1,19}$")] | None,
        Meta(extra={"expected": "1 to 19 letters or digits"}),
    ] = None
    payment_account_name: Annotated[str, Meta(max_length=100)] | None = None
    payment_qr_template: Annotated[
        str, Meta(pattern=r"^[A-Za-z0-9_]{1,40}$", extra={"expected": "a VietQR template id (compact2, qr_only, ...)"})
    ] = "compact2"

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
        """The settings of ``environ`` (default ``os.environ``); an unset or blank variable
        takes its default. Raises SettingsError naming the variable."""
        env = os.environ if environ is None else environ
        given = {f.encode_name: env[f.encode_name].strip() for f in _FIELDS if env.get(f.encode_name, "").strip()}
        for field in _FIELDS:
            if field.required and field.encode_name not in given:
                raise SettingsError(_missing(field.encode_name, given.get("APP_ENV", "development")))
        values: dict[str, object] = {}
        for field in _FIELDS:
            if field.encode_name in given:
                try:
                    values[field.encode_name] = _parse(field.type, given[field.encode_name])
                except ValueError:
                    raise _malformed(field, given) from None
        try:
            settings = msgspec.convert(values, cls)
        except msgspec.ValidationError as exc:
            wrong = re.search(r"`\$\.(\w+)", str(exc))
            if wrong is None:
                raise
            raise _malformed(_BY_VARIABLE[wrong[1]], given) from None
        for variable in required_secret_variables(given):
            if variable not in given:
                raise SettingsError(_missing(variable, settings.app_env))
        if settings.payment_bank_id and not settings.payment_account_number:
            raise SettingsError("PAYMENT_BANK_ID needs PAYMENT_ACCOUNT_NUMBER (the account buyers transfer to)")
        return settings


_STRUCT = msgspec.inspect.type_info(Settings)
assert isinstance(_STRUCT, msgspec.inspect.StructType)
_FIELDS = _STRUCT.fields
_BY_VARIABLE = {field.encode_name: field for field in _FIELDS}

# Every variable Settings.from_env reads (the README's table and the deploy manifests are
# tested against this list).
ENVIRONMENT_VARIABLES = tuple(_BY_VARIABLE)


def _extra(info: msgspec.inspect.Type) -> dict[str, Any]:
    return (info.extra or {}) if isinstance(info, msgspec.inspect.Metadata) else {}


def _kind(info: msgspec.inspect.Type) -> msgspec.inspect.Type:
    return info.type if isinstance(info, msgspec.inspect.Metadata) else info


_SECRET_FIELDS = frozenset(f.name for f in _FIELDS if _extra(f.type).get("secret"))
SECRET_VARIABLES = tuple(f.encode_name for f in _FIELDS if f.name in _SECRET_FIELDS)
# What production refuses to start without, and what devtools generates for development.
REQUIRED_SECRET_VARIABLES = tuple(f.encode_name for f in _FIELDS if f.name in _SECRET_FIELDS and f.required)

# The secret each SePay authentication mode needs (Settings.sepay_auth).
SEPAY_SECRET_VARIABLES = {"apikey": "SEPAY_API_KEY", "hmac": "SEPAY_HMAC_SECRET"}


def required_secret_variables(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The secrets ``environ`` needs: those always required, and the one its SePay mode
    (``SEPAY_AUTH``) names."""
    mode = environ.get("SEPAY_AUTH", "").strip()
    return REQUIRED_SECRET_VARIABLES + tuple(v for m, v in SEPAY_SECRET_VARIABLES.items() if m == mode)


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _parse(info: msgspec.inspect.Type, raw: str) -> object:
    """A variable's text as the field's type wants it (bounds are checked after)."""
    parse: Callable[[str], object] | None = _extra(info).get("parse")
    kind = _kind(info)
    if parse is not None:
        return parse(raw)
    if isinstance(kind, msgspec.inspect.IntType):
        return int(raw)
    if isinstance(kind, msgspec.inspect.FloatType):
        return float(raw)
    if isinstance(kind, msgspec.inspect.BoolType):
        if raw.lower() not in _TRUE + _FALSE:
            raise ValueError(raw)
        return raw.lower() in _TRUE
    if isinstance(kind, msgspec.inspect.VarTupleType):
        return tuple(item.strip() for item in raw.split(",") if item.strip())
    return raw


def _expected(info: msgspec.inspect.Type) -> str:
    kind = _kind(info)
    if "expected" in _extra(info):
        return str(_extra(info)["expected"])
    if isinstance(kind, msgspec.inspect.IntType):
        if kind.le is not None:
            return f"an integer between {kind.ge} and {kind.le}"
        return "an integer"
    if isinstance(kind, msgspec.inspect.FloatType):
        return "a positive number" if kind.gt == 0 else "a number"
    if isinstance(kind, msgspec.inspect.BoolType):
        return "a boolean (1/0, true/false)"
    if isinstance(kind, msgspec.inspect.LiteralType):
        return " or ".join(repr(value) for value in kind.values)
    if isinstance(kind, msgspec.inspect.VarTupleType):
        return "one or more comma-separated values"
    return "valid"


def _malformed(field: msgspec.inspect.Field, given: Mapping[str, str]) -> SettingsError:
    shown = "<secret>" if field.name in _SECRET_FIELDS else repr(given[field.encode_name])
    return SettingsError(f"{field.encode_name} must be {_expected(field.type)}, not {shown}")


def _missing(variable: str, app_env: str) -> str:
    if app_env == "production":
        return f"{variable} must be set when APP_ENV=production"
    return (
        f"{variable} is not set: in development, start through make run or make worker "
        f"(python -m devtools.devserver), which fill in the secrets kept in .data/dev-secrets.json, "
        f"or set it"
    )


def database_url_from_env(environ: Mapping[str, str] | None = None) -> str:
    """``DATABASE_URL`` alone, as Settings reads it: all the migration runner needs, so it
    runs without the service's secrets."""
    env = os.environ if environ is None else environ
    return env.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:<secret>@{host}"))
