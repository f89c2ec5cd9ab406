"""deploy/grafana/upcoach-llm-stack.json: a Grafana dashboard model whose every query names
metrics (and labels) the stack registers, on the data source the importer picks; and the
README's Metrics table, which lists every one of those metrics."""

from __future__ import annotations

import importlib
import json
import re
from functools import cache

import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from tests.support.paths import REPO_ROOT
from upcoach_llm.gateway.metrics.registry import GatewayMetrics

DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "upcoach-llm-stack.json"
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
# The modules that register the gRPC services' metrics in prometheus_client's default registry.
SERVICE_MODULES = ("upcoach_llm.common.metrics", "upcoach_llm.generation.service",
                   "upcoach_llm.router.backend_pool", "upcoach_llm.router.executor",
                   "upcoach_llm.router.safety.check",
                   "upcoach_llm.embedding.servicer", "upcoach_llm.embedding.service",
                   "upcoach_llm.registry.servicer")
OURS = re.compile(r"^(upcoach|gateway)_")
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
                "or", "unless", "offset"}


@cache
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def queries() -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in dashboard()["panels"]
            for target in panel.get("targets", [])]


def _families(registry: CollectorRegistry) -> dict[tuple[str, str], tuple[str, ...]]:
    # prometheus_client has no public way to list the label names of a metric with no series
    # yet: they are read from the collector the registry keeps under the family's name.
    collectors = registry._names_to_collectors
    return {(family.name, family.type): tuple(getattr(collectors[family.name], "_labelnames", ()))
            for family in registry.collect() if OURS.match(family.name)}


@cache
def families() -> dict[tuple[str, str], tuple[str, ...]]:
    """(name, type) of every metric the gRPC services and the gateway export, and its labels."""
    for module in SERVICE_MODULES:
        importlib.import_module(module)
    return {**_families(REGISTRY), **_families(GatewayMetrics().registry)}


def registered() -> dict[str, tuple[str, ...]]:
    """Every sample name those metrics export (``_total``, ``_bucket``...), with its labels."""
    return {name + suffix: labels for (name, kind), labels in families().items()
            for suffix in SUFFIXES[kind]}


def parse(expr: str) -> tuple[set[str], set[str], set[str]]:
    """(metric names, labels in matchers, labels grouped by); a label label_replace makes
    counts as a metric's label."""
    made = set(re.findall(r'label_replace\([^"]*"(\w+)"', re.sub(r"\{[^}]*\}", "", expr)))
    grouped = {label.strip() for clause in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr)
               for label in clause.split(",") if label.strip()}
    matched = {label for block in re.findall(r"\{([^}]*)\}", expr)
               for label in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", block)}
    bare = re.sub(r'"[^"]*"', "", expr)
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\b(?:by|without)\s*\([^)]*\)", " ", bare)
    names = {word for word in re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", bare)
             if word not in PROMQL_WORDS}
    return names, matched, grouped - made


def test_it_is_a_grafana_dashboard_model() -> None:
    model = dashboard()
    assert model["title"] and model["uid"] == "upcoach-llm-stack"
    assert isinstance(model["schemaVersion"], int) and model["schemaVersion"] >= 36
    ids = [panel["id"] for panel in model["panels"]]
    assert len(ids) == len(set(ids))
    for panel in model["panels"]:
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["type"] in ("timeseries", "stat"), panel["title"]
        assert panel["datasource"] == DATASOURCE, panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        assert all(target["datasource"] == DATASOURCE for target in panel["targets"])


def test_the_data_source_is_an_input_and_a_variable() -> None:
    model = dashboard()
    assert [(i["name"], i["type"], i["pluginId"]) for i in model["__inputs"]] == [
        ("DS_PROMETHEUS", "datasource", "prometheus")]
    variables = {v["name"]: v for v in model["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"


@pytest.mark.parametrize("words", [
    "requests/s", "error rate", "latency", "time to first token", "tokens/s", "queue depth",
    "cache hit rate", "rate-limited", "backend health"])
def test_it_has_the_panels_operators_look_for(words: str) -> None:
    assert any(words in panel["title"].lower() for panel in dashboard()["panels"]), words


def test_the_parser_finds_names_and_labels() -> None:
    names, matched, grouped = parse(
        'histogram_quantile(0.95, sum by (service, le) (label_replace(rate(a_b_bucket'
        '{code!="OK", x=~"5.."}[$__rate_interval]), "service", "$1", "method", "/(x)/.*"))) '
        "/ sum(c_total)")
    assert names == {"a_b_bucket", "c_total"}
    assert matched == {"code", "x"}
    assert grouped == {"le"}


@pytest.mark.parametrize(("title", "expr"), queries())
def test_every_query_names_registered_metrics_and_labels(title: str, expr: str) -> None:
    known = registered()
    names, matched, grouped = parse(expr)
    assert names, f"{title}: no metric in {expr}"
    unknown = names - set(known)
    assert not unknown, f"{title}: {sorted(unknown)} are not registered by any service"
    labels = {label for name in names for label in known[name]}
    if any(name.endswith("_bucket") for name in names):
        labels.add("le")
    assert matched <= labels, f"{title}: no such label {sorted(matched - labels)}"
    assert grouped <= labels, f"{title}: grouped by missing label {sorted(grouped - labels)}"


def test_the_readme_lists_every_metric() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(\w+)` \|", section, flags=re.MULTILINE))
    exported = {name + ("_total" if kind == "counter" else "") for name, kind in families()}
    assert listed == exported, (sorted(exported - listed), sorted(listed - exported))
