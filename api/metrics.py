"""GET /metrics: Prometheus' text format for this replica's HTTP figures (api/edge.py) and
every actor host's (runtime/metrics.py), gathered at scrape time.

Why an endpoint of our own on the service port and not Ray's metrics agent: the embedded
service runs without Ray's dashboard and its agent (memory, README "Memory"), and the
figures a user of this service needs (commands and appends by kind, resident entities) live in
the hosts, which one scrape here reaches on a single node or a cluster alike.
"""

from __future__ import annotations

from typing import Any, Iterable

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import generate_latest
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily, Metric)
from prometheus_client.registry import Collector, CollectorRegistry

from api.edge import detail_responses
from api.middleware import REGISTRY
from api.operator import OperatorRoute
from api.runtime import current
from runtime.metrics import BUCKETS

router = APIRouter(tags=["operator"], route_class=OperatorRoute,
                   responses=detail_responses(401, 503))

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Hosts(Collector):
    """The hosts' figures as metric families, labelled by host and kind."""

    def __init__(self, hosts: list[dict[str, Any]]) -> None:
        self.hosts = hosts

    def collect(self) -> Iterable[Metric]:
        commands = CounterMetricFamily("actorlog_commands", "commands handled, by kind",
                                       labels=["host", "kind"])
        events = CounterMetricFamily("actorlog_events_appended", "events appended, by kind",
                                     labels=["host", "kind"])
        resident = GaugeMetricFamily("actorlog_resident_entities", "entities active in a host",
                                     labels=["host", "kind"])
        subscriptions = GaugeMetricFamily("actorlog_subscriptions", "live tails of a host",
                                          labels=["host"])
        histograms = {
            name: HistogramMetricFamily(f"actorlog_{name}", doc, labels=["host", "kind"])
            for name, doc in (("command_seconds", "a command's time, mailbox wait included"),
                              ("append_seconds", "a durable append's time"))}
        for h in self.hosts:
            host = str(h["index"])
            for kind, counts in h["kinds"].items():
                commands.add_metric([host, kind], counts.get("commands", 0))
                events.add_metric([host, kind], counts.get("events", 0))
            for kind, n in h["resident"].items():
                resident.add_metric([host, kind], n)
            subscriptions.add_metric([host], h["subscribers"])
            for name, family in histograms.items():
                for kind, hist in h[name].items():
                    cumulative, buckets = 0, []
                    for bound, n in zip([*map(str, BUCKETS), "+Inf"], hist["counts"]):
                        cumulative += n
                        buckets.append((bound, cumulative))
                    family.add_metric([host, kind], buckets, hist["sum"])
        yield from (commands, events, resident, subscriptions, *histograms.values())


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text"}})
async def metrics() -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Hosts(await current().client.ametrics()))
    body = generate_latest(REGISTRY) + generate_latest(registry)
    return Response(body, media_type=CONTENT_TYPE)
