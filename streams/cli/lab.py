"""The lab commands: demo, chaos, compare, bench (embedded broker and object store, or none)."""

import argparse
import json
from pathlib import Path

from latentline.streams.settings import Settings


def add_commands(sub) -> None:
    """Registers this group's commands on the root parser's subparsers."""
    for add in (_add_demo, _add_chaos, _add_compare, _add_bench):
        add(sub)


def _add_demo(sub) -> None:
    demo = sub.add_parser("demo", help="the whole path on an embedded broker and object store")
    demo.add_argument("--data", type=Path, help="dataset folder (default: ELPV mono cells)")
    demo.add_argument("--events", type=int, help="events to publish (default: the test set once)")
    demo.add_argument("--cameras", type=int, default=2)
    demo.add_argument("--rate", type=float, help="events per second (default: as fast as possible)")
    demo.add_argument("--timeout", type=float, default=600.0)
    demo.add_argument("--json", type=Path, help="write the summary here as JSON")
    demo.set_defaults(run=cmd_demo)


def _add_chaos(sub) -> None:
    chaos = sub.add_parser("chaos", help="SIGKILL workers and take the object store away mid-stream; "
                           "fails if any part is lost or given up as store_unavailable")
    chaos.add_argument("--workers", type=int, default=2, help="worker processes in one consumer group")
    chaos.add_argument("--kills", type=int, default=10, help="workers SIGKILLed (and restarted) in all")
    chaos.add_argument("--events", type=int, default=2000)
    chaos.add_argument("--store-outage-seconds", type=float, default=30.0, help="0: no outage")
    chaos.add_argument("--rate", type=float, default=20.0, help="events per second (0: as fast as possible)")
    chaos.add_argument("--data", type=Path, help="dataset folder for the model and the images "
                       "(default: ELPV mono cells)")
    chaos.add_argument("--seed", type=int, default=0, help="picks the moments and the victims")
    chaos.add_argument("--timeout", type=float, default=900.0,
                       help="seconds after the last event is published for every part to be answered")
    chaos.add_argument("--logs", type=Path, help="keep worker and broker logs here")
    chaos.add_argument("--json", type=Path, help="write the report here as JSON")
    chaos.set_defaults(run=cmd_chaos)


def _add_compare(sub) -> None:
    comparison = sub.add_parser("compare", help="every anomaly method (and anomalib's, if installed) "
                                "side by side: AUROC, fit time, images/s")
    comparison.add_argument("data_dir", type=Path)
    comparison.add_argument("--out", type=Path, default=Path("var/compare.json"))
    comparison.add_argument("--methods", help="comma-separated (default: all)")
    comparison.add_argument("--backbone", default="mobilenet_v2")
    comparison.add_argument("--image-size", type=int, default=320)
    comparison.add_argument("--no-peers", action="store_true", help="leave anomalib out")
    comparison.add_argument("--max-train", type=int, help="good training images per row (evenly spaced)")
    comparison.set_defaults(run=cmd_compare)


def _add_bench(sub) -> None:
    bench = sub.add_parser("bench", help="encoder, model, searches, bank sizes, pipeline: ratios of one run")
    bench.add_argument("--data", type=Path, help="dataset folder (default: ELPV mono cells)")
    bench.add_argument("--events", type=int, default=400)
    bench.add_argument("--out", type=Path, default=Path("var/bench.json"))
    bench.add_argument("--model", type=Path, metavar="MODEL_DIR",
                       help="the bundle to measure (default: the lab's cached model of the dataset, "
                            "fitted with the present defaults)")
    bench.add_argument("--model-only", action="store_true",
                       help="the model's figures alone: no broker, object store or worker")
    bench.set_defaults(run=cmd_bench)


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from latentline.streams.lab.demo import DemoOptions, print_summary, run_demo
    from latentline.streams.lab.elpv import layout

    data_dir = args.data or layout(settings.cache_dir / "data", "mono")
    options = DemoOptions(data_dir, args.events, args.cameras, args.rate, args.timeout)
    summary = run_demo(options, settings)
    print_summary(summary, args.json)
    accounted = summary.verdicts + summary.dead_letters == summary.events_published
    return 0 if accounted and summary.duplicates == 0 else 1


def cmd_chaos(args: argparse.Namespace, settings: Settings) -> int:
    from latentline.streams.lab.chaos import ChaosOptions, print_report, run_chaos
    from latentline.streams.lab.elpv import layout

    data_dir = args.data or layout(settings.cache_dir / "data", "mono")
    options = ChaosOptions(data_dir, workers=args.workers, kills=args.kills, events=args.events,
                           store_outage_seconds=args.store_outage_seconds, rate=args.rate or None,
                           seed=args.seed, timeout=args.timeout, logs=args.logs)
    report = run_chaos(options, settings)
    print_report(report, args.json)
    return 0 if report.passed() else 1


def cmd_compare(args: argparse.Namespace, settings: Settings) -> int:
    from latentline.models.encoding.config import EncoderConfig
    from latentline.streams.lab.compare import METHODS, compare, markdown, write_comparison

    methods = args.methods.split(",") if args.methods else METHODS
    encoder = EncoderConfig(backbone=args.backbone, image_size=args.image_size)
    rows = compare(args.data_dir, methods, encoder, settings.device, peers=not args.no_peers,
                   max_train=args.max_train)
    write_comparison(rows, args.out)
    print(markdown(rows))
    return 0


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from latentline.streams.lab.bench import run_bench, write_bench
    from latentline.streams.lab.elpv import layout

    data_dir = args.data or layout(settings.cache_dir / "data", "mono")
    result = run_bench(data_dir, settings, events=args.events, model_only=args.model_only,
                       model_dir=args.model)
    write_bench(result, args.out)
    print(json.dumps({k: v for k, v in result.items() if k != "pipeline"}, indent=2))
    return 0
