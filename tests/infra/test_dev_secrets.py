"""Development secrets: devtools generates the missing ones once and hands them to what it
starts; Settings never generates one, so without them it stops, saying how to get them."""

from __future__ import annotations

import json
import stat

import pytest

from devtools.dev_secrets import development_secrets
from service.settings import REQUIRED_SECRET_VARIABLES, Settings, SettingsError


def test_missing_secrets_are_generated_once_and_kept(tmp_path):
    path = tmp_path / "dev-secrets.json"
    first = development_secrets({}, path)
    assert set(first) == set(REQUIRED_SECRET_VARIABLES) and all(len(value) >= 32 for value in first.values())
    assert development_secrets({"APP_ENV": "development"}, path) == first
    assert json.loads(path.read_text()) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    Settings.from_env(first)


def test_secrets_the_environment_gives_are_left_to_it(tmp_path):
    path = tmp_path / "dev-secrets.json"
    filled = development_secrets({"ADMIN_API_KEY": "mine", "JWT_SECRET": " "}, path)
    assert set(filled) == {"CART_TOKEN_SECRET", "JWT_SECRET"}
    assert development_secrets(dict.fromkeys(REQUIRED_SECRET_VARIABLES, "given"), path) == {}


def test_production_gets_no_generated_secret(tmp_path):
    path = tmp_path / "dev-secrets.json"
    assert development_secrets({"APP_ENV": "production"}, path) == {}
    assert not path.exists()


@pytest.mark.parametrize("app_env", ["development", "production"])
def test_settings_without_a_secret_stop_naming_it(app_env):
    given = {"APP_ENV": app_env, **dict.fromkeys(REQUIRED_SECRET_VARIABLES, "x")}
    del given["JWT_SECRET"]
    with pytest.raises(SettingsError, match="JWT_SECRET") as refused:
        Settings.from_env(given)
    if app_env == "development":
        assert "make run" in str(refused.value)


def test_sepay_on_gets_its_secret_generated_too(tmp_path):
    path = tmp_path / "dev-secrets.json"
    off = development_secrets({}, path)
    assert "SEPAY_API_KEY" not in off and "SEPAY_HMAC_SECRET" not in off
    on = development_secrets({"SEPAY_AUTH": "hmac"}, path)
    assert set(on) == {*REQUIRED_SECRET_VARIABLES, "SEPAY_HMAC_SECRET"} and on["JWT_SECRET"] == off["JWT_SECRET"]
    Settings.from_env({"SEPAY_AUTH": "hmac", **on})


def test_make_runs_banner_says_how_to_call_sepay_when_it_is_on():
    from devtools.devserver import _sepay_lines

    base = {**dict.fromkeys(REQUIRED_SECRET_VARIABLES, "x")}
    assert _sepay_lines(Settings.from_env(base), "http://h") == []
    on = Settings.from_env({**base, "SEPAY_AUTH": "apikey", "SEPAY_API_KEY": "k1"})
    assert _sepay_lines(on, "http://h") == ["sepay:    POST http://h/api/payments/sepay with Authorization: Apikey k1"]
    signed = Settings.from_env({**base, "SEPAY_AUTH": "hmac", "SEPAY_HMAC_SECRET": "s1"})
    assert "SEPAY_HMAC_SECRET s1" in _sepay_lines(signed, "http://h")[0]
