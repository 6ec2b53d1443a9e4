"""The PromQL signals of latentline, named once; dashboards and alert rules share them.

``$__rate_interval`` is Grafana's rate window; alert rules substitute a fixed one.
"""

JOB = 'job="latentline"'
RATE = "$__rate_interval"


def quantile(q: float, histogram: str, by: str = "") -> str:
    group = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, sum by ({group}) (rate({histogram}_bucket[{RATE}])))"


WORKERS_UP = f"sum(up{{{JOB}}})"
WORKER_UP_EACH = f"up{{{JOB}}}"
THROUGHPUT = f"sum(rate(latentline_events_consumed_total[{RATE}]))"
VERDICT_MIX = f"sum by (decision) (rate(latentline_verdicts_total[{RATE}]))"
VERDICTS_PER_CAMERA = f"sum by (camera) (rate(latentline_verdicts_total[{RATE}]))"
ANOMALY_RATE_PER_CAMERA = (
    f'sum by (camera) (rate(latentline_verdicts_total{{decision!="ok"}}[{RATE}]))'
    f" / sum by (camera) (rate(latentline_verdicts_total[{RATE}]))"
)
DEAD_LETTERS_BY_KIND = f"sum by (kind) (rate(latentline_dead_letters_total[{RATE}]))"
DEAD_LETTER_SHARE = (
    f"sum(rate(latentline_dead_letters_total[{RATE}]))"
    f" / sum(rate(latentline_events_consumed_total[{RATE}]))"
)
DUPLICATES = f"sum(rate(latentline_duplicate_events_total[{RATE}]))"
CONSUMER_LAG = "sum by (partition) (latentline_consumer_lag)"
TOTAL_LAG = "sum(latentline_consumer_lag)"
E2E_P50 = quantile(0.5, "latentline_end_to_end_latency_seconds")
E2E_P99 = quantile(0.99, "latentline_end_to_end_latency_seconds")
STAGE_P50 = quantile(0.5, "latentline_stage_duration_seconds", by="stage")
STAGE_P99 = quantile(0.99, "latentline_stage_duration_seconds", by="stage")
BATCH_SIZE_MEAN = (
    f"sum(rate(latentline_batch_size_sum[{RATE}])) / sum(rate(latentline_batch_size_count[{RATE}]))"
)
BATCH_FILL_MEAN = (
    f"sum(rate(latentline_batch_fill_ratio_sum[{RATE}]))"
    f" / sum(rate(latentline_batch_fill_ratio_count[{RATE}]))"
)
DRIFT_STATE_PER_CAMERA = "max by (camera) (latentline_drift_state)"
DRIFT_ALERTS_BY_STATISTIC = (
    f"sum by (camera, statistic) (increase(latentline_drift_alerts_total[{RATE}]))"
)
OPEN_NOVELTY_CANDIDATES = 'sum(latentline_novelty_candidates{status="open"})'
NOVELTY_SIGHTINGS = f"sum(rate(latentline_novelty_sightings_total[{RATE}]))"
DEFECT_TYPES = f"sum by (defect_type, status) (rate(latentline_defect_types_total[{RATE}]))"
REVIEW_REQUESTS_BY_REASON = f"sum by (reason) (rate(latentline_review_requests_total[{RATE}]))"
KNOWN_DEFECT_TYPES = "max(latentline_classifier_types)"
LABELS_BY_OUTCOME = f"sum by (outcome) (increase(latentline_labels_total[{RATE}]))"
STALLED_PARTITIONS = "max by (instance, partition) (latentline_partition_stalled)"
PAUSED_BY_CAUSE = "max by (instance, cause) (latentline_paused)"
TRANSIENT_RETRIES = f"sum by (cause) (increase(latentline_transient_retries_total[{RATE}]))"
STATE_REJECTED = f"sum by (table) (increase(latentline_state_rejected_total[{RATE}]))"
ASSIGNED_PARTITIONS = "sum by (instance) (latentline_assigned_partitions)"
MODEL_VERSION = "max by (version) (latentline_model_info)"
DEVICE_MEMORY = "sum by (instance, device) (latentline_device_memory_bytes)"
DEVICE_UTILISATION = "avg by (instance, device) (latentline_device_utilization_ratio)"

# Only a worker with a GPU exports these; on CPU-only deployments their panels stay empty.
GPU_ONLY = frozenset({DEVICE_MEMORY, DEVICE_UTILISATION})


def with_window(expr: str, window: str) -> str:
    """Grafana's rate window replaced by a fixed one (alert rules, tests)."""
    return expr.replace(RATE, window)
