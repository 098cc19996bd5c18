"""What a finished run measured: its wall time and throughput, and Beam's own metrics, all in
timing.json, the one output that differs from run to run.

The counters and distributions the stages declare (`Metrics.counter` / `Metrics.distribution`; the
dedup distributions are the memory a step held at once) are summed over the steps that reported
them. Where the runner also reports how long its workers spent in each step (FnApiRunner does;
Dataflow shows it on the job's page instead) that is added up per top-level step of the graph.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from apache_beam.metrics.metric import MetricResults

RUN_TIMING = "timing.json"
_STEP_TIME = "metric:ptransform_execution_time:total_msecs:v1"    # Beam's name, namespace "beam"


def beam_metrics(results: list[Any]) -> dict[str, Any]:
    """`{"counters": {namespace: {name: total}}, "distributions": {namespace: {name: {count, sum, min,
    max, mean}}}}` of the user metrics the finished pipelines of a run reported."""
    queries = [result.metrics().query() for result in results]
    counters: dict[str, dict[str, int]] = defaultdict(dict)
    for metric in (metric for query in queries for metric in query[MetricResults.COUNTERS]):
        key = metric.key.metric
        counters[key.namespace][key.name] = counters[key.namespace].get(key.name, 0) + _value(metric)
    gathered: dict[tuple[str, str], list] = defaultdict(list)
    for metric in (metric for query in queries for metric in query[MetricResults.DISTRIBUTIONS]):
        value = _value(metric)
        if value is not None and value.count:
            gathered[metric.key.metric.namespace, metric.key.metric.name].append(value)
    distributions: dict[str, dict[str, dict]] = defaultdict(dict)
    for (namespace, name), values in gathered.items():
        count, total = sum(v.count for v in values), sum(v.sum for v in values)
        distributions[namespace][name] = {"count": count, "sum": total, "min": min(v.min for v in values),
                                          "max": max(v.max for v in values), "mean": round(total / count, 3)}
    return {"counters": _sorted(counters), "distributions": _sorted(distributions)}


def step_seconds(results: list[Any]) -> dict[str, float]:
    """Seconds the workers spent in each top-level step, summed over workers, busiest first; empty
    where the runner does not report it."""
    monitored = [result.monitoring_metrics() for result in results if hasattr(result, "monitoring_metrics")]
    seconds: dict[str, float] = defaultdict(float)
    for metric in (metric for monitoring in monitored for metric in monitoring.query()[MetricResults.COUNTERS]):
        if metric.key.metric.name == _STEP_TIME and metric.key.step:
            seconds[metric.key.step.split("/", 1)[0]] += (_value(metric) or 0) / 1000
    return {step: round(s, 3) for step, s in sorted(seconds.items(), key=lambda kv: (-kv[1], kv[0])) if s > 0}


def timing(results: list[Any], stats: dict[str, Any], wall_seconds: float) -> dict[str, Any]:
    """Wall time of the run, documents and input megabytes (the funnel's `input_bytes`) per second,
    and the time per step where measurable."""
    wall = max(wall_seconds, 1e-9)
    return {"wall_seconds": round(wall_seconds, 3),
            "docs_per_second": round(stats["input_docs"] / wall, 3),
            "input_mb_per_second": round(stats["input_bytes"] / 1e6 / wall, 3),
            "step_seconds": step_seconds(results)}


def _value(metric: Any) -> Any:
    return metric.committed if metric.committed is not None else metric.attempted


def _sorted(tree: dict[str, dict]) -> dict[str, dict]:
    return {namespace: dict(sorted(names.items())) for namespace, names in sorted(tree.items())}
