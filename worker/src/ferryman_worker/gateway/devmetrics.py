"""One ``/metrics`` for ``ferryman dev``: the gateway's families merged with the worker's.

``ferryman dev`` runs the gateway in its own process and the worker in a child process,
each with its own registry (``metrics.py``), and promises everything on one port. The
gateway scrapes the worker's loopback endpoint and merges the two expositions: families
that only one side has pass through; a family both export (``ferryman_runs_finished_total``
with API cancellations on the gateway) has equal series added up, as Prometheus would sum
them across targets. Per-process families (``process_*``, ``python_*``) keep the gateway's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

import httpx
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

log = logging.getLogger("ferryman.dev")

PER_PROCESS = ("process_", "python_")


def merge(texts: Iterable[str]) -> list[Metric]:
    """Merge Prometheus text expositions; equal series of a shared family are summed."""
    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            if family.name in families:
                if family.name.startswith(PER_PROCESS):
                    continue
                if family.type != families[family.name].type:
                    continue  # cannot be merged; the first source wins
            else:
                families[family.name] = family
                values[family.name] = {}
            series = values[family.name]
            for s in family.samples:
                key = (s.name, tuple(sorted(s.labels.items())))
                series[key] = series.get(key, 0.0) + s.value
    merged = []
    for name, family in families.items():
        out = Metric(family.name, family.documentation, family.type, family.unit)
        out.samples = [Sample(n, dict(labels), v) for (n, labels), v in values[name].items()]
        merged.append(out)
    return merged


class _Families:
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def render(families: list[Metric]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry)


class DevMetrics:
    """The gateway's registry plus the worker's, fetched at scrape time."""

    def __init__(self, registry: CollectorRegistry, upstreams: list[str]) -> None:
        self.registry = registry
        self.upstreams = upstreams
        # Well under any scrape timeout: a stuck worker must not take the gateway down too.
        self.client = httpx.AsyncClient(timeout=1.0)
        self.failing: set[str] = set()

    async def exposition(self) -> bytes:
        texts = [generate_latest(self.registry).decode()]
        for url in self.upstreams:
            try:
                response = await self.client.get(url)
                response.raise_for_status()
            except httpx.HTTPError as exc:
                # The worker restarts on every code change: say so once, not every scrape.
                if url not in self.failing:
                    log.warning(
                        "worker metrics unavailable at %s (%s: %s)", url, type(exc).__name__, exc
                    )
                    self.failing.add(url)
                continue
            if url in self.failing:
                log.info("worker metrics back at %s", url)
                self.failing.discard(url)
            texts.append(response.text)
        return render(merge(texts))

    async def close(self) -> None:
        await self.client.aclose()
