"""deploy/prometheus/citybot-rules.yml: valid rules (``promtool check rules`` where promtool is
installed) over metrics citybot really exports, read from a running ``citybot worker``'s own
/metrics (CITYBOT_WORKER_METRICS_PORT), where the filer's and the dispatcher's series live."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.web.serve_process import free_port

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "citybot-rules.yml"
CITYBOT = Path(sys.executable).with_name("citybot")
# What Prometheus itself adds for every target.
PROMETHEUS_OWN = {"up"}
# PromQL words that look like metric names in an expression.
PROMQL_WORDS = {
    "sum", "by", "rate", "increase", "histogram_quantile", "le", "and", "or", "unless",
    "without", "max", "min", "avg", "count", "on", "ignoring", "group_left", "group_right",
}  # fmt: skip


def _scrape_worker(tmp_path: Path) -> str:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CITYBOT_")},
        "CITYBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/citybot.sqlite3",
        "CITYBOT_WORKER_METRICS_PORT": str(port),
        "CITYBOT_LOG_LEVEL": "WARNING",
    }
    worker = subprocess.Popen(
        [str(CITYBOT), "worker"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline().startswith("citybot worker is running")
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    return str(r.read().decode())
            except OSError:
                if time.monotonic() > deadline or worker.poll() is not None:
                    raise
                time.sleep(0.1)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        if worker.stdout is not None:
            worker.stdout.close()


def _exported(exposition: str) -> set[str]:
    """Every series name the exposition declares, labelled series not yet seen included."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_count", "_sum"),
            "summary": ("_count", "_sum", ""),
        }.get(family.type, ("",))
        names.update(family.name + suffix for suffix in suffixes)
    return names


def _metric_names(expr: str) -> set[str]:
    """The series an expression reads: its words, less label matchers, groupings, ranges,
    numbers and PromQL's own words."""
    text = re.sub(r"\{[^}]*\}", "", expr)
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"(?<![\w.])\d+(\.\d+)?([eE][+-]?\d+)?", "", text)
    return set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text)) - PROMQL_WORDS


async def test_rules_use_only_metrics_citybot_exports(tmp_path: Path) -> None:
    exported = _exported(await asyncio.to_thread(_scrape_worker, tmp_path))
    assert {"citybot_filing_alerts_total", "citybot_queue_oldest_seconds"} <= exported
    # The worker's own CPU and memory, under the standard names (issue 16).
    assert {
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
    } <= exported
    document: dict[str, Any] = yaml.safe_load(RULES.read_text())
    rules = [rule for group in document["groups"] for rule in group["rules"]]
    assert len(rules) >= 10
    for rule in rules:
        assert rule["labels"]["severity"] in ("page", "ticket"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        used = _metric_names(rule["expr"])
        assert used, rule["alert"]
        unknown = used - exported - PROMETHEUS_OWN
        assert not unknown, f"{rule['alert']} names {unknown}, which citybot does not export"


def test_promtool_accepts_the_rules() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        # The test above validates the expressions' metric names either way.
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    done = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
