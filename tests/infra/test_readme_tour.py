"""The README's purchase in `curl` works as pasted: the block between its tour markers runs
in bash against a live server with the demo event, and ends with a paid order."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from devtools import PROJECT_ROOT
from devtools.devserver import seed_demo_event
from tests.live_server import live_server

pytestmark = pytest.mark.usefixtures("clean_state")

TOUR = re.compile(r"<!-- tour:start -->\n```sh\n(.*?)```\n<!-- tour:end -->", re.DOTALL)


def readme_tour() -> str:
    found = TOUR.search((PROJECT_ROOT / "README.md").read_text())
    assert found, "README.md has no block between <!-- tour:start --> and <!-- tour:end -->"
    return found.group(1)


async def test_the_readme_purchase_runs_as_pasted_and_ends_paid(settings, db_pool):
    assert shutil.which("curl"), "the tour needs curl"
    async with db_pool.acquire() as conn:
        await seed_demo_event(conn)

    with live_server(settings) as server:
        run = subprocess.run(  # noqa: ASYNC221 (the server is another process; nothing here awaits)
            ["bash", "-euo", "pipefail", "-c", readme_tour()],
            cwd=PROJECT_ROOT,
            env={"PATH": "/usr/bin:/bin", "API": server.base_url, "ADMIN_KEY": settings.admin_api_key},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert run.returncode == 0, run.stderr
    cart, promo, priced, order, read_back, paid = (json.loads(line) for line in run.stdout.splitlines())
    assert (cart["item_count"], cart["total"]) == (2, 1_000_000)
    assert promo["code"] == "TOUR10"
    assert (priced["promo_code"], priced["discount"], priced["total"]) == ("TOUR10", 100_000, 900_000)
    assert (order["status"], order["total"], len(order["tickets"])) == ("pending_payment", 900_000, 2)
    assert order["payment"]["code"] and order["access_token"]
    assert read_back["id"] == order["id"]
    assert (paid["id"], paid["status"]) == (order["id"], "paid")
