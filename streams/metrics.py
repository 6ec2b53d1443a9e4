"""Worker metrics, Prometheus naming: base units, ``_total`` counters, latency histograms."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

# Milliseconds to tens of seconds: the stages are ms on a GPU, end-to-end includes queueing.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
STAGES = ("fetch", "decode", "encode", "score", "publish")


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events = Counter("latentline_events_consumed", "Camera events consumed", registry=r)
        self.verdicts = Counter(
            "latentline_verdicts", "Verdicts published", ["decision"], registry=r
        )
        self.dead_letters = Counter(
            "latentline_dead_letters", "Events sent to the dead-letter topic", ["kind"], registry=r
        )
        self.duplicates = Counter(
            "latentline_duplicate_events", "Redelivered events that already had a verdict",
            registry=r,
        )
        self.batch_size = Histogram(
            "latentline_batch_size", "Events per micro-batch", buckets=BATCH_BUCKETS, registry=r
        )
        self.stage_seconds = Histogram(
            "latentline_stage_duration_seconds", "Wall time of one pipeline stage for one batch",
            ["stage"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.end_to_end_seconds = Histogram(
            "latentline_end_to_end_latency_seconds",
            "From captured_at to the verdict acknowledged by the broker",
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.assigned_partitions = Gauge(
            "latentline_assigned_partitions",
            "Input partitions this worker owns after the last completed rebalance", registry=r,
        )
        self.model_info = Gauge(
            "latentline_model_info", "The model bundle in use (value 1)", ["version"], registry=r
        )

    def serve(self, port: int) -> None:
        if port:
            start_http_server(port, addr="0.0.0.0", registry=self.registry)
