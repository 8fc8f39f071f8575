"""Re-pin deploy/requirements.lock: the exact versions pip resolves for pyproject's runtime
dependencies (no extras), as wheels for Linux on CPython 3.11, the image's platform.

Asks PyPI (pip's --dry-run --report); installs nothing. Run: make -f deploy/deploy.mk lock
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "deploy" / "requirements.lock"
HEADER = """\
# Exact versions of the runtime dependencies the image installs (pyproject's
# [project] dependencies, no extras, and everything they pull in), so a rebuild takes
# the same packages. Regenerate after changing them: make -f deploy/deploy.mk lock
"""


def resolve(requirements: list[str], platform: str) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--dry-run",
                "--ignore-installed",
                "--only-binary=:all:",
                "--platform",
                platform,
                "--python-version",
                "3.11",
                "--implementation",
                "cp",
                "--target",
                str(Path(tmp) / "target"),
                "--report",
                str(report),
                *requirements,
            ],
            check=True,
        )
        installs = json.loads(report.read_text())["install"]
    return {i["metadata"]["name"].lower().replace("_", "-"): i["metadata"]["version"] for i in installs}


def main() -> int:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    requirements = pyproject["project"]["dependencies"]
    pins = resolve(requirements, "manylinux2014_x86_64")
    arm = resolve(requirements, "manylinux2014_aarch64")
    if arm != pins:
        print("amd64 and arm64 resolve differently; the lock would not fit both:", file=sys.stderr)
        for name in sorted(set(arm) ^ set(pins) | {n for n in pins if arm.get(n) != pins[n]}):
            print(f"  {name}: amd64 {pins.get(name)}, arm64 {arm.get(name)}", file=sys.stderr)
        return 1
    LOCK.write_text(HEADER + "".join(f"{n}=={v}\n" for n, v in sorted(pins.items())))
    print(f"{LOCK.relative_to(ROOT)}: {len(pins)} packages pinned")
    return 0


if __name__ == "__main__":
    sys.exit(main())
