"""``latentline``: fit, evaluate, calibrate, make-reference, compare, publish, worker, redrive, demo,
chaos, evaluate-stream, bench."""

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from schemas import ErrorKind
from streams.settings import Settings


def cmd_fit(args: argparse.Namespace, settings: Settings) -> int:
    from models.encoding.config import EncoderConfig
    from models.scoring.registry import DEFAULT_METHOD, make_scorer
    from models.training.fit import TypeOptions, fit_bundle

    weights = None if args.weights.lower() == "none" else args.weights
    config = EncoderConfig(backbone=args.backbone, weights=weights, image_size=args.image_size,
                           precision=args.precision)
    types = TypeOptions(classifier=args.classifier, views=args.views, drop_suspects=args.drop_suspects)
    scorer = make_scorer(args.method or DEFAULT_METHOD, **json.loads(args.params))
    bundle = fit_bundle(args.data_dir, config, scorer, target_fpr=args.target_fpr, device=settings.device,
                        types=types)
    bundle.save(args.out)
    print(f"model {bundle.version} -> {args.out} (threshold {bundle.thresholds.threshold:.4g})")
    if report := bundle.training.get("defect_types"):
        print(f"defect types {', '.join(report['types'])} from {report['examples']} examples; "
              f"{len(report['suspects'])} suspect examples{' dropped' if report['dropped'] else ''} "
              f"(manifest.json, training.defect_types)")
    if args.upload:
        from streams.worker.store import ObjectStore

        ObjectStore(settings).upload_dir(args.out, args.upload)
        print(f"uploaded to {args.upload}; workers load it with LATENTLINE_MODEL_URI={args.upload}")
    return 0


def cmd_publish(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from models.dataset import IMAGE_SUFFIXES
    from streams.worker.producer import CameraSimulator, kafka_producer, publish_paths
    from streams.worker.store import ObjectStore
    from streams.worker.topics import ensure_topics

    settings = settings.model_copy(update={
        k: v for k, v in (("broker_url", args.broker), ("store_url", args.store)) if v
    })
    paths = sorted(p for p in args.directory.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        print(f"no images under {args.directory}", file=sys.stderr)
        return 1

    async def run() -> None:
        await ensure_topics(settings)
        store = ObjectStore(settings)
        store.ensure_bucket(settings.image_bucket)
        producer = kafka_producer(settings)
        await producer.start()
        try:
            with tqdm(total=len(paths), desc=f"publishing {args.camera}", unit="event") as bar:
                await publish_paths(
                    CameraSimulator(settings, store, producer),
                    [(p, args.camera) for p in paths], args.rate, lambda e, p: bar.update(),
                )
        finally:
            await producer.stop()

    asyncio.run(run())
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from streams.worker.worker import run_worker

    run_worker(settings)
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from streams.lab.demo import DemoOptions, print_summary, run_demo
    from streams.lab.elpv import layout

    data_dir = args.data or layout(settings.cache_dir / "data", "mono")
    options = DemoOptions(data_dir, args.events, args.cameras, args.rate, args.timeout)
    summary = run_demo(options, settings)
    print_summary(summary, args.json)
    accounted = summary.verdicts + summary.dead_letters == summary.events_published
    return 0 if accounted and summary.duplicates == 0 else 1


def cmd_chaos(args: argparse.Namespace, settings: Settings) -> int:
    from streams.lab.chaos import ChaosOptions, print_report, run_chaos
    from streams.lab.elpv import layout

    data_dir = args.data or layout(settings.cache_dir / "data", "mono")
    options = ChaosOptions(data_dir, workers=args.workers, kills=args.kills, events=args.events,
                           store_outage_seconds=args.store_outage_seconds, rate=args.rate or None,
                           seed=args.seed, timeout=args.timeout, logs=args.logs)
    report = run_chaos(options, settings)
    print_report(report, args.json)
    return 0 if report.passed() else 1


def cmd_redrive(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import datetime

    from streams.worker.redrive import RedriveFilter, redrive

    chosen = RedriveFilter(
        kinds=frozenset(ErrorKind(k) for k in args.kind),
        since=datetime.fromisoformat(args.since) if args.since else None,
        until=datetime.fromisoformat(args.until) if args.until else None,
        event_ids=frozenset(args.event_id),
    )
    report = asyncio.run(redrive(settings, chosen, dry_run=args.dry_run))
    print(json.dumps(report.as_dict() | {"dry_run": args.dry_run}, indent=2))
    return 0


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from streams.lab.bench import run_bench, write_bench
    from streams.lab.elpv import layout

    data_dir = args.data or layout(settings.cache_dir / "data", "mono")
    result = run_bench(data_dir, settings, events=args.events)
    write_bench(result, args.out)
    print(json.dumps({k: v for k, v in result.items() if k != "pipeline"}, indent=2))
    return 0


def cmd_compare(args: argparse.Namespace, settings: Settings) -> int:
    from models.encoding.config import EncoderConfig
    from streams.lab.compare import METHODS, compare, markdown, write_comparison

    methods = args.methods.split(",") if args.methods else METHODS
    encoder = EncoderConfig(backbone=args.backbone, image_size=args.image_size)
    rows = compare(args.data_dir, methods, encoder, settings.device, peers=not args.no_peers,
                   max_train=args.max_train)
    write_comparison(rows, args.out)
    print(markdown(rows))
    return 0


def cmd_evaluate_stream(args: argparse.Namespace, settings: Settings) -> int:
    from models.bundle import ModelBundle
    from models.evaluation.stream import StreamScript, evaluate_stream
    from models.inspector import Inspector

    script = StreamScript(
        stable_events=args.stable_events, drift_events=args.drift_events,
        novelty_events=args.novelty_events, brightness=args.brightness, contrast=args.contrast,
        seed=args.seed,
    )
    inspector = Inspector(ModelBundle.load(args.model_dir), device=settings.device)
    metrics = evaluate_stream(inspector, args.data_dir, args.out, script)
    print(json.dumps(metrics, indent=2))
    print(f"report: {args.out / 'metrics.json'}, {args.out / 'stream.png'}")
    return 0


def cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from models.bundle import ModelBundle
    from models.evaluation.report import evaluate
    from models.inspector import Inspector

    inspector = Inspector(ModelBundle.load(args.model_dir), device=settings.device)
    metrics = evaluate(inspector, args.data_dir, args.out)
    print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, dict)}, indent=2))
    print(f"report: {args.out}/metrics.json and its PNG plots")
    return 0


def cmd_calibrate(args: argparse.Namespace, settings: Settings) -> int:
    from models.bundle import ModelBundle
    from models.inspector import Inspector
    from models.training.calibrate import calibrate

    bundle = ModelBundle.load(args.model_dir)
    inspector = Inspector(bundle, device=settings.device)
    scale = calibrate(inspector, args.reference_dir, args.quantity, args.unit, space=args.space,
                      coverage=args.coverage)
    bundle.quantities[args.quantity] = scale
    bundle.save(args.model_dir)
    report = scale.report()
    print(json.dumps({k: v for k, v in report.items() if k != "cv_mae"}, indent=2))
    u, k = scale.expanded_uncertainty_, scale.coverage_factor_
    print(f"{args.quantity} stored in {args.model_dir} ({scale.space} latent, {scale.direction_kind_} "
          f"direction, U = {u:.3g} {args.unit} at k = {k:.2f})")
    return 0


def cmd_make_reference(args: argparse.Namespace, settings: Settings) -> int:
    from models.evaluation.reference_set import make_reference_set
    from models.metrology.reference import ReferenceDefect

    defect = ReferenceDefect(kind=args.kind, pixel_pitch_mm=args.pixel_pitch, min_mm=args.min_mm,
                             max_mm=args.max_mm)
    description = make_reference_set(args.data_dir, args.out, defect, n_reference=args.n_reference,
                                     n_test=args.n_test, n_good=args.n_good, seed=args.seed)
    print(json.dumps(description, indent=2))
    print(f"calibrate with: latentline calibrate MODEL_DIR {args.out / 'reference'} "
          f"--quantity {defect.quantity} --unit mm")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="latentline", description=__doc__)
    sub = root.add_subparsers(dest="command", required=True)

    fit = sub.add_parser("fit", help="fit a model bundle on DATA_DIR/train/good")
    fit.add_argument("data_dir", type=Path)
    fit.add_argument("--out", type=Path, required=True)
    fit.add_argument("--method", help="anomaly scorer (default patchcore; README, Anomaly scorers)")
    fit.add_argument("--params", default="{}",
                     help='scorer hyperparameters as JSON, e.g. \'{"coreset_ratio": 0.05}\'')
    fit.add_argument("--backbone", default="mobilenet_v2", help="a torchvision model name (README, Encoders)")
    fit.add_argument("--weights", default="IMAGENET1K_V1",
                     help="torchvision weights enum name or a local .pth file; 'none' for random weights")
    fit.add_argument("--image-size", type=int, default=320)
    fit.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto")
    fit.add_argument("--target-fpr", type=float, default=0.01)
    fit.add_argument("--upload", help="also copy the bundle to this s3://bucket/prefix")
    fit.add_argument("--classifier", choices=("logistic", "prototype"), default="logistic",
                     help="defect-type classifier (when DATA_DIR/train/<type>/ folders exist)")
    fit.add_argument("--views", type=int, default=8, choices=range(1, 9), metavar="1-8",
                     help="flips and rotations per labelled example (1 where orientation matters)")
    fit.add_argument("--drop-suspects", action="store_true",
                     help="leave out labelled examples that data hygiene flags (see the manifest)")
    fit.set_defaults(run=cmd_fit)

    evaluate = sub.add_parser("evaluate", help="score DATA_DIR/test: metrics.json and plots")
    evaluate.add_argument("model_dir", type=Path)
    evaluate.add_argument("data_dir", type=Path)
    evaluate.add_argument("--out", type=Path, required=True, help="report folder")
    evaluate.set_defaults(run=cmd_evaluate)

    cal = sub.add_parser("calibrate", help="measure a quantity in physical units: fit it on reference "
                         "images of known value and store it in the bundle")
    cal.add_argument("model_dir", type=Path)
    cal.add_argument("reference_dir", type=Path, help="images and values.csv (header file,value)")
    cal.add_argument("--quantity", required=True, help="its name in verdicts, e.g. spot_diameter")
    cal.add_argument("--unit", required=True, help="e.g. mm")
    cal.add_argument("--space", choices=("defect", "code", "pooled"),
                     help="the latent to measure in (default: the best the bundle's scorer offers)")
    cal.add_argument("--coverage", type=float, default=0.95, help="coverage of the expanded uncertainty")
    cal.set_defaults(run=cmd_calibrate)

    ref = sub.add_parser("make-reference", help="draw defects of known size onto good images: a "
                         "reference set for calibrate and evaluate")
    ref.add_argument("data_dir", type=Path, help="a dataset with train/good and test/good")
    ref.add_argument("--out", type=Path, required=True)
    ref.add_argument("--kind", choices=("spot", "scratch"), default="spot")
    ref.add_argument("--pixel-pitch", type=float, default=0.05, help="mm per pixel of the source images")
    ref.add_argument("--min-mm", type=float, default=0.15)
    ref.add_argument("--max-mm", type=float, default=1.5)
    ref.add_argument("--n-reference", type=int, default=300)
    ref.add_argument("--n-test", type=int, default=200)
    ref.add_argument("--n-good", type=int, default=100)
    ref.add_argument("--seed", type=int, default=0)
    ref.set_defaults(run=cmd_make_reference)

    publish = sub.add_parser("publish", help="upload images and publish their camera events")
    publish.add_argument("directory", type=Path)
    publish.add_argument("--camera", required=True)
    publish.add_argument("--rate", type=float, help="events per second (default: as fast as possible)")
    publish.add_argument("--broker", help="overrides LATENTLINE_BROKER_URL")
    publish.add_argument("--store", help="overrides LATENTLINE_STORE_URL")
    publish.set_defaults(run=cmd_publish)

    worker = sub.add_parser("worker", help="run an inspection worker (configured by LATENTLINE_*)")
    worker.set_defaults(run=cmd_worker)

    redrive = sub.add_parser("redrive", help="re-publish chosen dead letters once their cause is fixed")
    redrive.add_argument("--kind", action="append", default=[], choices=[k.value for k in ErrorKind],
                         help="only this error kind (repeatable; default: every kind)")
    redrive.add_argument("--since", help="only letters that failed at or after this ISO time (with zone)")
    redrive.add_argument("--until", help="only letters that failed before this ISO time (with zone)")
    redrive.add_argument("--event-id", action="append", default=[], help="only this event (repeatable)")
    redrive.add_argument("--dry-run", action="store_true", help="count what would be re-published")
    redrive.set_defaults(run=cmd_redrive)

    demo = sub.add_parser("demo", help="the whole path on an embedded broker and object store")
    demo.add_argument("--data", type=Path, help="dataset folder (default: ELPV mono cells)")
    demo.add_argument("--events", type=int, help="events to publish (default: the test set once)")
    demo.add_argument("--cameras", type=int, default=2)
    demo.add_argument("--rate", type=float, help="events per second (default: as fast as possible)")
    demo.add_argument("--timeout", type=float, default=600.0)
    demo.add_argument("--json", type=Path, help="write the summary here as JSON")
    demo.set_defaults(run=cmd_demo)

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

    replay = sub.add_parser("evaluate-stream", help="replay a scripted stream: drift and new types")
    replay.add_argument("model_dir", type=Path)
    replay.add_argument("data_dir", type=Path)
    replay.add_argument("--out", type=Path, required=True, help="report folder (metrics.json, stream.png)")
    replay.add_argument("--stable-events", type=int, default=2000)
    replay.add_argument("--drift-events", type=int, default=600)
    replay.add_argument("--novelty-events", type=int, default=600)
    replay.add_argument("--brightness", type=float, default=0.8, help="lighting change: brightness factor")
    replay.add_argument("--contrast", type=float, default=0.9, help="lighting change: contrast factor")
    replay.add_argument("--seed", type=int, default=0)
    replay.set_defaults(run=cmd_evaluate_stream)

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

    bench = sub.add_parser("bench", help="batched vs unbatched, pipeline vs bare model")
    bench.add_argument("--data", type=Path, help="dataset folder (default: ELPV mono cells)")
    bench.add_argument("--events", type=int, default=400)
    bench.add_argument("--out", type=Path, default=Path("var/bench.json"))
    bench.set_defaults(run=cmd_bench)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command != "worker":  # client chatter would bury the live view and progress bars
        for noisy in ("aiokafka", "kafka", "urllib3"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    return args.run(args, settings)


if __name__ == "__main__":
    sys.exit(main())
