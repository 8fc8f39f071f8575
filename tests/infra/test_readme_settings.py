"""The README's settings table names every variable Settings reads, with its real default."""

import re

import msgspec

from devtools import PROJECT_ROOT
from service.settings import ENVIRONMENT_VARIABLES, Settings

_ROW = re.compile(r"^\| `([A-Z0-9_]+)` \| ([^|]+) \|", re.MULTILINE)


def _settings_table() -> dict[str, str]:
    text = (PROJECT_ROOT / "README.md").read_text()
    section = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    return {name: default.strip() for name, default in _ROW.findall(section)}


def _documented_default(variable: str) -> str:
    """How the README writes the default of ``variable``'s Settings field."""
    default = {f.encode_name: f.default for f in msgspec.structs.fields(Settings)}[variable]
    if default is msgspec.NODEFAULT:
        return "dev: generated"
    if default is None or default == ():
        return "(none)"
    if isinstance(default, bool):
        return f"`{int(default)}`"
    return f"`{default}`"


def test_the_table_lists_exactly_the_environment_variables():
    assert list(_settings_table()) == list(ENVIRONMENT_VARIABLES)


def test_each_default_is_the_one_settings_uses():
    assert _settings_table() == {variable: _documented_default(variable) for variable in ENVIRONMENT_VARIABLES}
