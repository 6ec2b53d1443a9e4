"""Worker metrics, Prometheus naming: base units, ``_total`` counters, latency histograms.

Labels are bounded: stage, decision, camera (cameras are few and long-lived), error kind,
partition, drift statistic, candidate status, defect type (named by operators: tens at most),
review reason, label outcome. Never an event, part or candidate id.
"""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily

from latentline.schemas import AlertStatus, Decision, ErrorKind, ReviewReason

# Milliseconds to tens of seconds: the stages are ms on a GPU, end-to-end includes queueing.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
FILL_BUCKETS = (0.125, 0.25, 0.5, 0.75, 1.0)
# One bucket set for every quantity and unit (a histogram's buckets cannot differ by label):
# 1-2-5 steps from 1e-3 to 1e4 resolve any calibrated range to within a factor of 2.5.
MEASUREMENT_BUCKETS = tuple(m * 10.0**e for e in range(-3, 5) for m in (1, 2, 5))
# evidence: rendering and storing the anomaly-map overlays of a batch's anomalous parts
STAGES = ("fetch", "decode", "encode", "score", "evidence", "publish")
MAP_OUTCOMES = ("stored", "failed")
# learned: a training example now; good: a false alarm (novelty only); no_latent: the event's
# latent was not kept (an ok part), so the classifier cannot use it; failed: the store failed
LABEL_OUTCOMES = ("learned", "good", "no_latent", "failed")
# transient faults the worker waits out (streams/worker/retry.py)
PAUSE_CAUSES = ("store", "device")
STATE_TABLES = ("drift-monitors", "novelty-detectors")


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = r = registry or CollectorRegistry()
        self.events = Counter("latentline_events_consumed", "Camera events consumed", registry=r)
        self.verdicts = Counter(
            "latentline_verdicts", "Verdicts published", ["camera", "decision"], registry=r
        )
        self.dead_letters = Counter(
            "latentline_dead_letters", "Events sent to the dead-letter topic", ["kind"], registry=r
        )
        self.duplicates = Counter(
            "latentline_duplicate_events", "Redelivered events that already had a verdict",
            registry=r,
        )
        self.paused = Gauge(
            "latentline_paused", "1 while consumption waits out a transient fault, by cause", ["cause"],
            registry=r,
        )
        self.retries = Counter(
            "latentline_transient_retries", "Pauses for a transient fault before retrying the same events",
            ["cause"], registry=r,
        )
        self.partition_stalled = Gauge(
            "latentline_partition_stalled",
            "1 while an owned input partition has lag and has answered nothing for stall_seconds",
            ["partition"], registry=r,
        )
        self.state_rejected = Counter(
            "latentline_state_rejected", "State records refused on restore (tampered, unknown format)",
            ["table"], registry=r,
        )
        self.ledger_purged = Counter(
            "latentline_ledger_purged", "Answered event ids forgotten after the retention window",
            registry=r,
        )
        self.batch_size = Histogram(
            "latentline_batch_size", "Events per micro-batch", buckets=BATCH_BUCKETS, registry=r
        )
        self.batch_fill = Histogram(
            "latentline_batch_fill_ratio", "Micro-batch size over the configured maximum",
            buckets=FILL_BUCKETS, registry=r,
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
        self.consumer_lag = Gauge(
            "latentline_consumer_lag", "Events waiting in an owned input partition",
            ["partition"], registry=r,
        )
        self.assigned_partitions = Gauge(
            "latentline_assigned_partitions",
            "Input partitions this worker owns after the last completed rebalance", registry=r,
        )
        self.model_info = Gauge(
            "latentline_model_info", "The model bundle in use (value 1)", ["version"], registry=r
        )
        self.drift_alerts = Counter(
            "latentline_drift_alerts", "Drift alerts raised", ["camera", "statistic"], registry=r
        )
        self.drift_state = Gauge(
            "latentline_drift_state", "1 while a camera drifts (a recent drift alert), else 0",
            ["camera"], registry=r,
        )
        self.drift_history = Gauge(
            "latentline_drift_history_events", "Events of a camera its drift detectors have seen",
            ["camera"], registry=r,
        )
        self.novelty_candidates = Gauge(
            "latentline_novelty_candidates", "New-defect-type candidates held by this worker",
            ["status"], registry=r,
        )
        self.novelty_sightings = Counter(
            "latentline_novelty_sightings", "Unexplained anomalies fed to novelty detection", registry=r
        )
        self.defect_types = Counter(
            "latentline_defect_types", "Anomalous parts by defect type and open-set status",
            ["camera", "status", "defect_type"], registry=r,
        )
        self.review_requests = Counter(
            "latentline_review_requests", "Events sent to operators, by reason", ["reason"], registry=r
        )
        self.labels = Counter(
            "latentline_labels", "Operators' labels by what became of them", ["outcome"], registry=r
        )
        self.classifier_examples = Gauge(
            "latentline_classifier_examples", "Labelled examples the defect classifier knows",
            ["source"], registry=r,
        )
        self.classifier_types = Gauge(
            "latentline_classifier_types", "Defect types the classifier can name", registry=r
        )
        self.anomaly_maps = Counter(
            "latentline_anomaly_maps", "Anomaly-map overlays of anomalous parts, by outcome", ["outcome"],
            registry=r,
        )
        self.measurements = Histogram(
            "latentline_measurement", "Calibrated quantities measured in range, in their unit",
            ["camera", "quantity", "unit"], buckets=MEASUREMENT_BUCKETS, registry=r,
        )
        self.measurements_out_of_range = Counter(
            "latentline_measurements_out_of_range",
            "Measurements outside the calibrated range (extrapolated; not in latentline_measurement)",
            ["camera", "quantity"], registry=r,
        )
        # every label visible at 0, so rates and panels exist before the first occurrence
        for kind in ErrorKind:
            self.dead_letters.labels(kind.value)
        for stage in STAGES:
            self.stage_seconds.labels(stage)
        for status in AlertStatus:
            self.novelty_candidates.labels(status.value)
        for reason in ReviewReason:
            self.review_requests.labels(reason.value)
        for outcome in LABEL_OUTCOMES:
            self.labels.labels(outcome)
        for outcome in MAP_OUTCOMES:
            self.anomaly_maps.labels(outcome)
        for cause in PAUSE_CAUSES:
            self.paused.labels(cause).set(0)
            self.retries.labels(cause)
        for table in STATE_TABLES:
            self.state_rejected.labels(table)

    def count_verdict(self, camera: str, decision: Decision) -> None:
        self.verdicts.labels(camera, decision.value).inc()

    def observe_measurements(self, camera: str, measurements: dict) -> None:
        """``measurements``: {quantity: schemas.Measurement} of one verdict."""
        for name, m in measurements.items():
            if m.in_range:
                self.measurements.labels(camera, name, m.unit).observe(m.value)
            else:
                self.measurements_out_of_range.labels(camera, name).inc()

    def watch_device(self, device) -> None:
        """GPU memory and utilisation, read at scrape time; nothing on a CPU-only worker."""
        if device.type == "cuda":
            self.registry.register(_CudaCollector(device))

    def serve(self, port: int) -> None:
        if port:
            start_http_server(port, addr="0.0.0.0", registry=self.registry)


class _CudaCollector:
    def __init__(self, device):
        self.device = device

    def collect(self):
        import torch

        memory = GaugeMetricFamily(
            "latentline_device_memory_bytes", "Memory allocated by torch on the device", labels=["device"]
        )
        memory.add_metric([str(self.device)], torch.cuda.memory_allocated(self.device))
        yield memory
        try:
            busy = torch.cuda.utilization(self.device) / 100.0  # needs NVML (pynvml)
        except Exception:  # NVML missing: report memory only
            return
        utilisation = GaugeMetricFamily(
            "latentline_device_utilization_ratio", "Share of time the GPU was busy", labels=["device"]
        )
        utilisation.add_metric([str(self.device)], busy)
        yield utilisation
