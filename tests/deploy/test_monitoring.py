"""deploy/monitoring: every expression parses as PromQL and names only metrics that
service/metrics.py defines; every alert has a runbook section; promtool's checks and unit
tests pass where promtool is installed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import promql_parser
import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from service import metrics
from tests.deploy.deploy_files import DEPLOY, ROOT

MONITORING = DEPLOY / "monitoring"
ALERTS = yaml.safe_load((MONITORING / "alerts.yaml").read_text())
DASHBOARD = json.loads((MONITORING / "dashboard.json").read_text())
RULES = [rule for group in ALERTS["groups"] for rule in group["rules"]]
# Grafana's variables, replaced by what they stand for at query time.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def _series_of_defined_metrics() -> dict[str, str]:
    """Each series name service.metrics can expose, mapped to its metric's name."""
    series = {}
    for metric in vars(metrics).values():
        if isinstance(metric, MetricWrapperBase):
            family = metric.describe()[0]
            suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
            for suffix in suffixes.get(family.type, ("",)):
                series[family.name + suffix] = family.name
    return series


DEFINED = _series_of_defined_metrics()


def _dashboard_expressions() -> list[str]:
    expressions = []
    for panel in DASHBOARD["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            expressions.append(expr)
    return expressions


def _metric_names(expr: str) -> set[str]:
    """Series names an expression selects (the parsed selectors, not label values)."""
    selected: set[str] = set()

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            selected.add(node.name)
        elif isinstance(node, promql_parser.MatrixSelector) and node.vector_selector.name:
            selected.add(node.vector_selector.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return selected


EXPRESSIONS = [(f"alert {r['alert']}", r["expr"]) for r in RULES] + [
    (f"dashboard #{i}", e) for i, e in enumerate(_dashboard_expressions())
]


def test_metric_names_are_read_from_the_parsed_expression():
    expr = 'histogram_quantile(0.99, sum by (le) (rate(tc_a_seconds_bucket{x="tc_b"}[5m]))) / tc_c'
    assert _metric_names(expr) == {"tc_a_seconds_bucket", "tc_c"}


@pytest.mark.parametrize("where,expr", EXPRESSIONS, ids=[w for w, _ in EXPRESSIONS])
def test_expression_uses_only_metrics_defined_in_service_metrics(where, expr):
    names = _metric_names(expr)
    assert names, f"{where} selects no metric"
    assert names <= DEFINED.keys(), f"{where}: not defined in service/metrics.py: {sorted(names - DEFINED.keys())}"


def test_every_defined_metric_is_on_the_dashboard():
    shown = {DEFINED.get(name) for e in _dashboard_expressions() for name in _metric_names(e)}
    assert set(DEFINED.values()) <= shown, f"not shown: {set(DEFINED.values()) - shown}"


def test_every_alert_has_a_severity_a_summary_and_a_runbook_section():
    operations = (ROOT / "docs" / "operations.md").read_text()
    anchors = {f"#{h.strip().lower()}" for h in re.findall(r"^#{2,4} (\S+)\s*$", operations, re.M)}
    for rule in RULES:
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        runbook = rule["annotations"]["runbook"]
        assert runbook == f"docs/operations.md#{rule['alert'].lower()}"
        assert runbook.removeprefix("docs/operations.md") in anchors, f"no section {runbook}"


def test_dashboard_panels_have_unique_ids_and_use_the_datasource_variable():
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    assert DASHBOARD["templating"]["list"][0]["name"] == "datasource"
    for panel in DASHBOARD["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


@pytest.mark.parametrize(
    "command", [["check", "rules", "alerts.yaml"], ["test", "rules", "alerts.test.yaml"]], ids=["check", "unit-tests"]
)
def test_promtool(command):
    if shutil.which("promtool") is None:
        # `make test` installs it (devtools/install-test-tools.sh); CI must never skip this.
        if os.environ.get("CI"):
            pytest.fail("promtool is not installed (Debian package prometheus)")
        pytest.skip("promtool is not installed: `make test-tools`")
    done = subprocess.run(
        ["promtool", *command],
        cwd=MONITORING,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_podmonitor_selects_the_pods_and_honours_the_worker_job_label(base_resources):
    monitor = yaml.safe_load((MONITORING / "podmonitor.yaml").read_text())
    ports = {
        port["name"]
        for r in base_resources
        if r["kind"] == "Deployment"
        for c in r["spec"]["template"]["spec"]["containers"]
        for port in c["ports"]
    }
    endpoints = {e["port"]: e for e in monitor["spec"]["podMetricsEndpoints"]}
    assert set(endpoints) == ports
    assert endpoints["metrics"]["honorLabels"] is True
