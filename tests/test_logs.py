"""The API writes each of its log lines once, as JSON on stdout (service/logs.py)."""

from __future__ import annotations

import json
import time

import httpx

from tests.live_server import live_server


def test_the_api_writes_each_of_its_lines_once_as_json(settings):
    with live_server(settings, LOG_LEVEL="INFO") as server:
        # PostgreSQL's monitor says "PostgreSQL answers" at start-up (INFO).
        deadline = time.monotonic() + 10
        while "PostgreSQL answers" not in server.log() and time.monotonic() < deadline:
            httpx.get(f"{server.base_url}/health/ready", timeout=5)
            time.sleep(0.1)
        output = server.log().splitlines()

    ours = [line for line in output if "PostgreSQL answers" in line]
    assert len(ours) == 1, ours  # not again in the root logger's plain format
    assert json.loads(ours[0])["logger"] == "ticket_cart.postgres"
