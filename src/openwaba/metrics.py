"""Prometheus metrics of the delivery engine (served at /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

registry = CollectorRegistry()

attempts = Counter(
    "openwaba_delivery_attempts",
    "Webhook delivery attempts, by destination and outcome",
    ["destination", "outcome"],
    registry=registry,
)
latency = Histogram(
    "openwaba_delivery_attempt_seconds",
    "Duration of webhook delivery attempts",
    ["destination"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=registry,
)
queue_depth = Gauge("openwaba_deliveries_pending", "Deliveries waiting for an attempt", registry=registry)
oldest_pending = Gauge(
    "openwaba_oldest_pending_delivery_age_seconds", "Age of the oldest pending delivery", registry=registry
)
