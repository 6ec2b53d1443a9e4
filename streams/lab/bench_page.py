"""The speed page (docs/bench/speed.md) written from ``latentline bench``'s JSON: every figure
with the commit, machine and command that measured it, so that no figure is restated by hand.

>>> page = speed_page({"commit": "abc1234", "command": "latentline bench", "machine": {"cpus": 2},
...     "device": "cpu", "precision": "fp32", "encoder_only_images_per_second": 40.0,
...     "bare_model_over_encoder_by_share": {"0.02": 0.9, "1.0": 0.6}, "defect_shares": {
...     "0.02": {"anomalous_share": 0.03, "bare_model_batched_images_per_second": 36.0},
...     "1.0": {"anomalous_share": 1.0, "bare_model_batched_images_per_second": 24.0}}})
>>> "| 1.0 | 1.00 | 24.0 | 0.60 |" in page, "abc1234" in page
(True, True)
"""

import json
from pathlib import Path


def speed_page(result: dict) -> str:
    """Markdown: provenance, the bare model at each defect share, then the other figures."""
    machine = result.get("machine", {})
    lines = [
        "# Speed, as measured",
        "",
        "Generated from one `latentline bench` run's JSON "
        "(`python -m latentline.streams.lab.bench_page BENCH.json OUT.md`); "
        "[docs/speed.md](../speed.md) says what sets the line rate and why.",
        "",
        f"- commit `{result.get('commit')}`, command `{result.get('command')}`",
        f"- machine: {machine.get('cpus')} CPUs ({machine.get('processor')}), GPU {machine.get('gpu')}, "
        f"torch {machine.get('torch')}; device {result.get('device')}, precision {result.get('precision')}",
        f"- batch {result.get('batch_size')}, forward passes of {result.get('forward_batch')}",
        "",
        "| defect share | anomalous share seen | bare model images/s | over the encoder |",
        "| --- | --- | --- | --- |",
    ]
    ratios = result.get("bare_model_over_encoder_by_share", {})
    for share, row in result.get("defect_shares", {}).items():
        lines.append(f"| {share} | {row['anomalous_share']:.2f} | "
                     f"{row['bare_model_batched_images_per_second']:.1f} | {ratios[share]:.2f} |")
    lines += ["", "| figure | measured |", "| --- | --- |"]
    lines += [f"| {name} | {_formatted(result[name])} |" for name in FIGURES if name in result]
    return "\n".join(lines) + "\n"


FIGURES = (
    "encoder_only_images_per_second", "batched_over_unbatched", "bare_model_cpu_seconds_per_image",
    "pipeline_events_per_second", "pipeline_over_bare_model", "worker_cpu_over_bare_model_cpu",
    "worker_peak_rss_bytes", "steady_rate_events_per_second", "steady_latency_p50_seconds",
    "steady_latency_p99_seconds",
)


def _formatted(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    import sys

    source, out = (argv or sys.argv[1:])[:2]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(speed_page(json.loads(Path(source).read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
