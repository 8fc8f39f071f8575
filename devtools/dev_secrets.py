"""Development secrets: generated once into ``.data/dev-secrets.json``, so that restarts,
the API's and the worker's processes and a second ``make run`` all agree.

The dev runner puts them into the environment of what it starts; ``service.settings`` never
generates a secret (in development too, a missing one stops the start-up).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from devtools import DATA_DIR
from service.settings import required_secret_variables

SECRETS_FILE = DATA_DIR / "dev-secrets.json"


def development_secrets(environ: Mapping[str, str], path: Path = SECRETS_FILE) -> dict[str, str]:
    """The required secrets ``environ`` lacks, from ``path`` (those missing there are
    generated and saved). Nothing when ``environ`` is for production: there a missing secret
    must stop the start-up. The SePay secret of ``SEPAY_AUTH``'s mode is one of them when
    that mode is set (``SEPAY_AUTH=apikey make run``)."""
    if environ.get("APP_ENV", "development") != "development":
        return {}
    missing = [name for name in required_secret_variables(environ) if not environ.get(name, "").strip()]
    if not missing:
        return {}
    stored = _load(path)
    if any(name not in stored for name in missing):
        stored.update({name: secrets.token_urlsafe(32) for name in missing if name not in stored})
        _save(path, stored)
    return {name: stored[name] for name in missing}


def _load(path: Path) -> dict[str, str]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def _save(path: Path, values: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(values, indent=2))
    os.chmod(tmp, 0o600)
    tmp.replace(path)
