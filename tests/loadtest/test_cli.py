"""``python -m loadtest run`` and ``compare`` end to end against the stand-in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtest.cli import main
from loadtest.server import ServerUnderTest
from tests.loadtest.conftest import STANDIN_ADMIN_KEY


def run_args(server: ServerUnderTest, *extra: str) -> list[str]:
    return [
        "run",
        "--base-url",
        server.url,
        "--admin-key",
        STANDIN_ADMIN_KEY,
        "--processes",
        "1",
        "--connections",
        "4",
        "--duration",
        "0.5",
        "--progress",
        "off",
        *extra,
    ]


def test_run_prints_the_table_and_writes_comparable_json(
    standin: ServerUnderTest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "flash.json"
    code = main(run_args(standin, "--scenario", "flash", "--buyers", "30", "--seats", "5", "--json", str(out)))
    printed = capsys.readouterr().out

    assert code == 0
    assert "p99 ms" in printed and "ceiling" in printed and "sold-out 25 (expected)" in printed
    assert "PASS  flash sale sells exactly the seats there are" in printed
    document = json.loads(out.read_text())
    assert [p["phase"]["label"] for p in document["phases"]] == ["ceiling", "flash"]
    assert document["phases"][1]["summary"]["checkout"]["ok"] == 5
    assert document["machine"]["nproc"] >= 1

    assert main(["compare", str(out), str(out)]) == 0
    table = capsys.readouterr().out
    assert "flash" in table and "+0%" in table


def test_run_without_admin_key_says_what_is_missing(
    standin: ServerUnderTest, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [a for a in run_args(standin, "--scenario", "add", "--no-ceiling") if a != STANDIN_ADMIN_KEY]
    args.remove("--admin-key")
    assert main(args) == 2
    assert "--admin-key" in capsys.readouterr().err


def test_an_unreachable_server_is_reported_not_measured(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "run",
            "--base-url",
            "http://127.0.0.1:9",
            "--scenario",
            "read",
            "--progress",
            "off",
            "--duration",
            "0.5",
            "--processes",
            "1",
        ]
    )
    assert code == 2
    assert "not answering" in capsys.readouterr().err
