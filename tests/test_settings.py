"""Settings.from_env: each field's declaration (variable, type, bounds, default) is all it
reads, and a wrong value is refused with a message naming its variable."""

from __future__ import annotations

import msgspec
import pytest

from service.settings import ENVIRONMENT_VARIABLES, SECRET_VARIABLES, Settings, SettingsError
from tests.conftest import TEST_SECRETS


def _settings(**variables: str) -> Settings:
    return Settings.from_env({**TEST_SECRETS, **variables})


def test_unset_and_blank_variables_take_the_declared_defaults():
    declared = {f.name: f.default for f in msgspec.structs.fields(Settings) if f.default is not msgspec.NODEFAULT}
    blank = dict.fromkeys(ENVIRONMENT_VARIABLES, " ")
    for settings in (_settings(), Settings.from_env({**blank, **TEST_SECRETS})):
        assert {name: getattr(settings, name) for name in declared} == declared


def test_values_are_read_as_their_fields_types():
    settings = _settings(
        PORT="8080",
        REDIS_CLUSTER="yes",
        REDIS_TIMEOUT_SECONDS="0.5",
        LOG_LEVEL="debug",
        CART_TOKEN_SECRET="new, old",
        CORS_ALLOW_ORIGINS="https://a.example,,https://b.example",
        TRUSTED_PROXIES="10.0.0.0/8, 192.0.2.7",
        APP_ENV="production",
    )
    assert (settings.port, settings.redis_cluster, settings.redis_timeout_seconds) == (8080, True, 0.5)
    assert settings.log_level == "DEBUG" and settings.is_production
    assert settings.cart_token_secrets == ("new", "old")
    assert settings.cors_allow_origins == ("https://a.example", "https://b.example")
    assert settings.trusted_proxies == ("10.0.0.0/8", "192.0.2.7/32")


@pytest.mark.parametrize(
    "variable,value",
    [
        ("PORT", "0"),
        ("PORT", "65536"),
        ("PORT", "http"),
        ("DB_POOL_MAX", "0"),
        ("RATE_LIMIT_BURST", "0"),
        ("REDIS_TIMEOUT_SECONDS", "0"),
        ("REDIS_CLUSTER", "maybe"),
        ("APP_ENV", "staging"),
        ("KEY_PREFIX", "{tc}:"),
        ("TRUSTED_PROXIES", "10.0.0.1/8"),
        ("CART_TOKEN_SECRET", " , "),
        ("ADMIN_API_KEY", ""),
    ],
)
def test_a_wrong_value_is_refused_naming_its_variable(variable, value):
    with pytest.raises(SettingsError, match=f"^{variable} "):
        _settings(**{variable: value})


def test_a_refused_secret_is_not_shown():
    with pytest.raises(SettingsError) as refused:
        _settings(CART_TOKEN_SECRET=",,")
    assert "<secret>" in str(refused.value) and ",," not in str(refused.value)


def test_the_secret_variables_are_the_fields_declared_secret():
    assert set(SECRET_VARIABLES) == {
        "ADMIN_API_KEY",
        "CART_TOKEN_SECRET",
        "JWT_SECRET",
        "TRUSTED_SERVICE_KEY",
        "SEPAY_API_KEY",
        "SEPAY_HMAC_SECRET",
    }
    assert set(SECRET_VARIABLES) <= set(ENVIRONMENT_VARIABLES)


@pytest.mark.parametrize("app_env", ["development", "production"])
@pytest.mark.parametrize("mode, secret", [("apikey", "SEPAY_API_KEY"), ("hmac", "SEPAY_HMAC_SECRET")])
def test_sepay_on_without_its_secret_stops_the_start_naming_it(app_env, mode, secret):
    with pytest.raises(SettingsError, match=f"^{secret} "):
        _settings(APP_ENV=app_env, SEPAY_AUTH=mode)
    other = "SEPAY_HMAC_SECRET" if mode == "apikey" else "SEPAY_API_KEY"
    with pytest.raises(SettingsError, match=f"^{secret} "):
        _settings(APP_ENV=app_env, SEPAY_AUTH=mode, **{other: "the other mode's"})
    assert _settings(APP_ENV=app_env, SEPAY_AUTH=mode, **{secret: "s"}).sepay_auth == mode
    assert _settings(APP_ENV=app_env).sepay_auth == "off"  # off needs neither


def test_a_bank_needs_its_account_number():
    with pytest.raises(SettingsError, match=r"^PAYMENT_BANK_ID needs PAYMENT_ACCOUNT_NUMBER"):
        _settings(PAYMENT_BANK_ID="970415")
    with pytest.raises(SettingsError, match=r"^PAYMENT_ACCOUNT_NUMBER "):
        _settings(PAYMENT_BANK_ID="970415", PAYMENT_ACCOUNT_NUMBER="0123 4567")
    assert _settings(PAYMENT_ACCOUNT_NUMBER="0123499999").payment_bank_id is None  # checked against SePay only
