"""The model commands: fit, evaluate, calibrate, make-reference, make-hard-cases, evaluate-stream,
evaluate-scenarios (files in, files out; no broker)."""

import argparse
import json
from pathlib import Path

from latentline.models.defect_types.descriptor import DESCRIPTORS
from latentline.models.defect_types.registry import DEFAULT_CLASSIFIER, classifiers
from latentline.streams.settings import Settings


def add_commands(sub) -> None:
    """Registers this group's commands on the root parser's subparsers."""
    for add in (_add_fit, _add_evaluate, _add_calibrate, _add_make_reference, _add_make_hard_cases,
                _add_evaluate_stream, _add_evaluate_scenarios):
        add(sub)


def _add_fit(sub) -> None:
    fit = sub.add_parser("fit", help="fit a model bundle on DATA_DIR/train/good")
    fit.add_argument("data_dir", type=Path)
    fit.add_argument("--out", type=Path, required=True)
    fit.add_argument("--method", help="anomaly scorer (default patchcore; docs/scoring.md)")
    fit.add_argument("--params", default="{}",
                     help='scorer hyperparameters as JSON, e.g. \'{"coreset_ratio": 0.05}\'')
    fit.add_argument("--backbone", default="mobilenet_v2", help="a torchvision model name (docs/scoring.md)")
    fit.add_argument("--weights", default="IMAGENET1K_V1",
                     help="torchvision weights enum name or a local .pth file; 'none' for random weights")
    fit.add_argument("--image-size", type=int, default=320)
    fit.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto")
    fit.add_argument("--tiles", type=_tiles, default="auto", metavar="auto|shape|ACROSSxDOWN",
                     help="tiles of image-size pixels every image is resized to, e.g. 8x1 for strips "
                     "or 2x2 for large images with small defects; shape: from the training images' "
                     "shape; auto (default): from the shape, made finer where the labelled defects "
                     "stand out better (docs/images.md)")
    fit.add_argument("--target-fpr", type=float, default=0.01)
    fit.add_argument("--upload", help="also copy the bundle to this s3://bucket/prefix")
    fit.add_argument("--classifier", choices=sorted(classifiers()), default=DEFAULT_CLASSIFIER,
                     help="defect-type classifier (when DATA_DIR/train/<type>/ folders exist); "
                     "patch-head learns a small network on the defect's hottest patches: slower to "
                     "fit, better named (docs/images.md)")
    fit.add_argument("--views", type=int, default=8, choices=range(1, 9), metavar="1-8",
                     help="flips and rotations per labelled example (1 where orientation matters)")
    fit.add_argument("--drop-suspects", action="store_true",
                     help="leave out labelled examples that data hygiene flags (see the manifest)")
    fit.add_argument("--descriptor", choices=("auto", *DESCRIPTORS), default="auto",
                     help="what the defect-type classifier reads: the patch features weighted by "
                     "the anomaly map, sharply (peak; auto, where the scorer has them) or evenly "
                     "(anomaly), the hottest patches unpooled (cells: for patch-head, auto with it), "
                     "or the image's centre (docs/defect-types.md); tuned comes with --fine-tune")
    fit.add_argument("--fine-tune", type=int, default=None, metavar="EPOCHS",
                     help="epochs of training the encoder's later blocks on the labelled defects, "
                     "types then named in the space they learn (default: 3, and at least 150 "
                     "optimiser steps, where the classifier and descriptor allow; 0: off, the "
                     "frozen features; docs/defect-types.md)")
    fit.set_defaults(run=cmd_fit)


def _add_evaluate(sub) -> None:
    evaluate = sub.add_parser("evaluate", help="score DATA_DIR/test: metrics.json and plots")
    evaluate.add_argument("model_dir", type=Path)
    evaluate.add_argument("data_dir", type=Path)
    evaluate.add_argument("--out", type=Path, required=True, help="report folder")
    evaluate.add_argument("--tile-model", type=Path,
                          help="for a make-hard-cases set: also score each tile alone with this bundle "
                          "(fitted on the tiles' dataset); adds one_by_one_image_auroc")
    evaluate.set_defaults(run=cmd_evaluate)


def _add_calibrate(sub) -> None:
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


def _add_make_reference(sub) -> None:
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


def _add_make_hard_cases(sub) -> None:
    hard = sub.add_parser("make-hard-cases", help="off-centre mosaics or long strips built from a "
                          "dataset's real patches, with masks: defects where the camera was not framed")
    hard.add_argument("data_dir", type=Path, help="a dataset with train/ and test/ (good and defect types)")
    hard.add_argument("--out", type=Path, required=True)
    hard.add_argument("--kind", choices=("mosaic", "strip"), default="mosaic")
    hard.add_argument("--tile", type=int, default=64, help="pixels per side of each source patch")
    hard.add_argument("--grid", type=int, default=3, help="tiles per side of a mosaic")
    hard.add_argument("--length", type=int, default=8, help="tiles in a strip")
    hard.add_argument("--n-train-good", type=int, default=300)
    hard.add_argument("--n-test-good", type=int, default=100)
    hard.add_argument("--n-test-per-type", type=int, default=60)
    hard.add_argument("--seed", type=int, default=0)
    hard.add_argument("--masks", choices=("tile", "twin"), default="tile",
                      help="tile: the whole defect tile; twin: the defect's own pixels, from its good "
                      "twin (only defects that have one; docs/images.md)")
    hard.set_defaults(run=cmd_make_hard_cases)


def _add_evaluate_stream(sub) -> None:
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


def _add_evaluate_scenarios(sub) -> None:
    scenarios = sub.add_parser("evaluate-scenarios", help="the drift scenario library against the pixel-"
                               "statistic drift watch: delays and false alarms (no model needed)")
    scenarios.add_argument("data_dirs", type=Path, nargs="+",
                           help="datasets with train/good and test/good; each gives the next its "
                           "different material")
    scenarios.add_argument("--out", type=Path, required=True,
                           help="report folder (scenarios.json, scenarios.png)")
    scenarios.add_argument("--stable-events", type=int, default=2000)
    scenarios.add_argument("--scenario-events", type=int, default=300,
                           help="a scenario unseen after these is 'never'")
    scenarios.add_argument("--seeds", default="0,1,2,3", help="comma-separated")
    scenarios.set_defaults(run=cmd_evaluate_scenarios)


def _tiles(text: str) -> tuple[int, int] | str:
    if text in ("auto", "shape"):
        return text
    across, _, down = text.lower().partition("x")
    if not (across.isdigit() and down.isdigit() and int(across) >= 1 and int(down) >= 1):
        raise argparse.ArgumentTypeError(f"{text!r}: tiles are ACROSSxDOWN, e.g. 8x1")
    return int(across), int(down)


def cmd_fit(args: argparse.Namespace, settings: Settings) -> int:
    from latentline.models.encoding.config import EncoderConfig
    from latentline.models.scoring.registry import DEFAULT_METHOD, make_scorer
    from latentline.models.training.fit import TypeOptions, fit_bundle
    from latentline.models.training.tiling import TilingSearch

    weights = None if args.weights.lower() == "none" else args.weights
    tiles = None if isinstance(args.tiles, str) else args.tiles  # auto, shape: chosen at fit
    config = EncoderConfig(backbone=args.backbone, weights=weights, image_size=args.image_size,
                           precision=args.precision, tiles=tiles)
    types = TypeOptions(classifier=args.classifier, views=args.views, drop_suspects=args.drop_suspects,
                        descriptor=args.descriptor, fine_tune=args.fine_tune)
    scorer = make_scorer(args.method or DEFAULT_METHOD, **json.loads(args.params))
    bundle = fit_bundle(args.data_dir, config, scorer, target_fpr=args.target_fpr, device=settings.device,
                        types=types, tiling=TilingSearch() if args.tiles == "auto" else None)
    bundle.save(args.out)
    print(f"model {bundle.version} -> {args.out} (threshold {bundle.thresholds.threshold:.4g}; "
          f"fitted in {bundle.training['fit_seconds']:.0f} s)")
    if report := bundle.training.get("defect_types"):
        print(f"defect types {', '.join(report['types'])} from {report['examples']} examples; "
              f"{len(report['suspects'])} suspect examples{' dropped' if report['dropped'] else ''} "
              f"(manifest.json, training.defect_types)")
    if args.upload:
        from latentline.streams.worker.store import ObjectStore

        ObjectStore(settings).upload_dir(args.out, args.upload)
        print(f"uploaded to {args.upload}; workers load it with LATENTLINE_MODEL_URI={args.upload}")
    return 0


def cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from latentline.models.bundle import ModelBundle
    from latentline.models.evaluation.report import evaluate
    from latentline.models.inspector import Inspector

    inspector = Inspector(ModelBundle.load(args.model_dir), device=settings.device)
    inspector.warm_up(forward_batch=0)  # the fastest encoder pass on this machine
    metrics = evaluate(inspector, args.data_dir, args.out)
    if args.tile_model:
        from latentline.models.evaluation.hard_cases import one_by_one

        tile_inspector = Inspector(ModelBundle.load(args.tile_model), device=settings.device)
        metrics |= one_by_one(tile_inspector, args.data_dir)
        (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, dict)}, indent=2))
    print(f"report: {args.out}/metrics.json and its PNG plots")
    return 0


def cmd_calibrate(args: argparse.Namespace, settings: Settings) -> int:
    from latentline.models.bundle import ModelBundle
    from latentline.models.inspector import Inspector
    from latentline.models.training.calibrate import calibrate

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
    from latentline.models.evaluation.reference_set import make_reference_set
    from latentline.models.metrology.reference import ReferenceDefect

    defect = ReferenceDefect(kind=args.kind, pixel_pitch_mm=args.pixel_pitch, min_mm=args.min_mm,
                             max_mm=args.max_mm)
    description = make_reference_set(args.data_dir, args.out, defect, n_reference=args.n_reference,
                                     n_test=args.n_test, n_good=args.n_good, seed=args.seed)
    print(json.dumps(description, indent=2))
    print(f"calibrate with: latentline calibrate MODEL_DIR {args.out / 'reference'} "
          f"--quantity {defect.quantity} --unit mm")
    return 0


def cmd_make_hard_cases(args: argparse.Namespace, settings: Settings) -> int:
    from latentline.models.evaluation.hard_cases import HardCases, make_hard_cases

    plan = HardCases(kind=args.kind, tile=args.tile, grid=args.grid, length=args.length,
                     n_train_good=args.n_train_good, n_test_good=args.n_test_good,
                     n_test_per_type=args.n_test_per_type, seed=args.seed, masks=args.masks)
    description = make_hard_cases(args.data_dir, args.out, plan)
    print(f"{len(description['images'])} images ({args.kind}) -> {args.out}")
    return 0


def cmd_evaluate_stream(args: argparse.Namespace, settings: Settings) -> int:
    from latentline.models.bundle import ModelBundle
    from latentline.models.evaluation.stream import StreamScript, evaluate_stream
    from latentline.models.inspector import Inspector

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


def cmd_evaluate_scenarios(args: argparse.Namespace, settings: Settings) -> int:
    from river import drift

    from latentline.models.evaluation.drift_scenarios import ScenarioScript, evaluate_scenarios, good_pool
    from latentline.models.online.drift import DriftMonitor

    def monitor() -> DriftMonitor:  # the worker's, from the same settings
        detector = drift.ADWIN(delta=settings.drift_delta, clock=settings.drift_clock)
        return DriftMonitor(detector, hold_events=settings.drift_hold_events,
                            reference_events=settings.drift_reference_events, clip=settings.drift_clip,
                            min_std=settings.drift_min_std)

    script = ScenarioScript(stable_events=args.stable_events, scenario_events=args.scenario_events,
                            seeds=tuple(int(s) for s in args.seeds.split(",")))
    report = evaluate_scenarios([good_pool(d) for d in args.data_dirs], args.out, script, monitor)
    for name, result in report["datasets"].items():
        print(f"{name}: false alarms per seed {result['false_alarms']}")
        for scenario, worst in result["worst_delay"].items():
            print(f"  {scenario:24s} worst delay {'never' if worst is None else worst}")
    print(f"report: {args.out / 'scenarios.json'}, {args.out / 'scenarios.png'}")
    return 0
