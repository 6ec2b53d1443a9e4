"""Fit a model bundle on the good training images of a dataset folder."""

import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.metrics import roc_auc_score

from latentline.models.bundle import ModelBundle
from latentline.models.dataset import GOOD, evenly_spaced, fingerprint, list_images
from latentline.models.defect_types.descriptor import describe, needs_anomaly_maps, pooled
from latentline.models.defect_types.open_set import OpenSetClassifier
from latentline.models.defect_types.patch_head import PatchHeadClassifier
from latentline.models.defect_types.registry import DEFAULT_CLASSIFIER, make_classifier
from latentline.models.defect_types.tuned import DESCRIPTOR as TUNED
from latentline.models.defect_types.type_network import BACKBONE, TypeNetwork, check_backbone
from latentline.models.defect_types.type_network import DEFAULT_EPOCHS as DEFAULT_FINE_TUNE
from latentline.models.deviation_space import DeviationSpace
from latentline.models.encoding.config import EncoderConfig
from latentline.models.encoding.encoder import PooledEncoder
from latentline.models.encoding.files import encode_files
from latentline.models.encoding.images import SHAPE_KEEPING_VIEWS
from latentline.models.errors import UserInputError
from latentline.models.latents import Latents
from latentline.models.online.defaults import NOVELTY_COMPONENTS
from latentline.models.online.latent_reference import LatentReference
from latentline.models.scoring.base import Scorer, encoder_inputs, held_back_scores
from latentline.models.scoring.registry import make_scorer
from latentline.models.scoring.threshold import Thresholds
from latentline.models.training.fit_tuned import fit_tuned_types
from latentline.models.training.fit_types import (
    DescribeFiles,
    TypeFit,
    fit_types,
    has_defect_types,
    labelled_defects,
)
from latentline.models.training.tiling import Tiles, TilingSearch


@dataclass(frozen=True)
class TypeOptions:
    """How the defect-type classifier is fitted (when train/<type>/ folders exist)."""

    classifier: str = DEFAULT_CLASSIFIER
    views: int = 8  # flips and rotations per example (1: orientation matters)
    drop_suspects: bool = False
    max_per_type: int | None = None
    enabled: bool = True
    # the type latent (models/defect_types/descriptor.py): "auto" is the anomaly-weighted "peak"
    # where the scorer has patch features, the centre view where it has none (autoencoders), and
    # the hot cells for the classifier that pools them itself (the patch head)
    descriptor: str = "auto"
    # epochs of fine-tuning the encoder's later blocks on the labelled defects
    # (models/defect_types/tuned.py); None: DEFAULT_FINE_TUNE where the tuned descriptor can be
    # read (descriptor auto, a classifier of vectors, a scorer with patch maps, the MobileNetV2
    # backbone), else 0; 0: none, the frozen peak descriptor (a third of the fit time on a CPU)
    fine_tune: int | None = None

    def epochs(self, scorer: Scorer, backbone: str = BACKBONE) -> int:
        """The fine-tuning epochs this fit runs (``fine_tune`` resolved)."""
        if self.fine_tune is not None:
            return self.fine_tune
        tunable = (self.descriptor in ("auto", TUNED) and self.classifier != PatchHeadClassifier.name
                   and scorer.needs_maps and backbone == BACKBONE)
        return DEFAULT_FINE_TUNE if tunable else 0

    def resolved_descriptor(self, scorer: Scorer, backbone: str = BACKBONE) -> str:
        head = self.classifier == PatchHeadClassifier.name
        epochs = self.epochs(scorer, backbone)
        kind = self.descriptor
        if kind == "auto":
            named = "cells" if head else TUNED if epochs else "peak"
            kind = named if scorer.needs_maps else "centre"
        if (kind == "cells") != head:
            raise UserInputError("the patch-head classifier reads the cells descriptor (patch features, "
                                 "from a scorer with maps), and only it does")
        if (kind == TUNED) != bool(epochs) or (epochs and head):
            raise UserInputError("fine-tuning (--fine-tune EPOCHS) names types with the tuned descriptor, "
                                 "from a scorer with maps and a classifier of vectors, and only it does")
        return kind


MIN_GOOD_IMAGES = 10
FORWARD_BATCH_UP_TO = 16  # the largest encoder pass a fit tries
MAX_GOOD_FOR_TYPES = 500


def fit_bundle(
    data_dir: Path,
    encoder_config: EncoderConfig = EncoderConfig(),
    scorer: Scorer | None = None,
    target_fpr: float = 0.01,
    review_fpr: float = 0.03,
    holdout: float = 0.2,
    max_images: int | None = None,
    device: str = "auto",
    progress: bool = True,
    types: TypeOptions = TypeOptions(),
    tiling: TilingSearch | None = TilingSearch(),
    forward_batch: int | None = 0,
) -> ModelBundle:
    """Encode train/good, fit the scorer on most of it and calibrate its thresholds on the rest
    (``holdout``); with train/<type>/ folders also the defect-type classifier. Unset ``tiles``
    follow the images' shape, refined by ``tiling`` where labelled defects can say how fine
    (models/training/tiling.py; None: by shape alone). ``forward_batch``: images per encoder
    pass, 0 to measure the fastest on this machine first (on a 2-core CPU passes of 2 images at
    320 px encoded 2.6 times as fast as passes of 32), None for whole batches."""
    paths = evenly_spaced([item.path for item in list_images(data_dir, "train", GOOD)], max_images)
    if len(paths) < MIN_GOOD_IMAGES:
        raise UserInputError(f"need at least {MIN_GOOD_IMAGES} good training images in "
                             f"{data_dir}/train/good, found {len(paths)}")
    started = time.perf_counter()
    scorer = scorer or make_scorer()
    kind = types.resolved_descriptor(scorer, encoder_config.backbone)
    if kind == TUNED and not (types.enabled and has_defect_types(data_dir)):
        kind = "peak"  # no labelled defects to tune on: the frozen part of the tuned latent
    config, tiling_report = _tiling(data_dir, encoder_config, scorer, paths, tiling, device, progress)
    encoder = fit_encoder(config, scorer, device, forward_batch,
                          trunk_layer=TypeNetwork.trunk_layer if kind == TUNED else None)
    views = encode_files(encoder, paths, progress=progress, **encoder_inputs(scorer))
    latents = views.full
    held_back = held_back_scores(scorer, views, holdout, progress=progress)
    thresholds = Thresholds.from_good_scores(held_back, target_fpr, review_fpr)
    created = datetime.now(UTC)
    data_fingerprint = fingerprint(paths)
    # a tuned bundle's good images are described by the frozen part of its type latent
    good_descriptors = _good_descriptors(scorer, views, "peak" if kind == TUNED else kind)
    fitted_types = _fit_types(data_dir, encoder, scorer, kind, good_descriptors, types, progress)
    # novelty reads the same descriptor as the types where it follows the defect (peak, anomaly);
    # scorers without patch features keep the pooled latents (models/online/latent_reference.py)
    reference = (LatentReference(NOVELTY_COMPONENTS, descriptor=kind) if needs_anomaly_maps(kind)
                 else LatentReference())
    return ModelBundle(
        version=f"{created:%Y%m%dT%H%M%SZ}-{data_fingerprint[:8]}",
        created_at=created,
        encoder=encoder.config,  # precision resolved for this device
        scorer=scorer,
        thresholds=thresholds,
        reference=reference.fit(latents, encoder.layer_dims(),
                                pooled("peak" if kind == TUNED else kind, good_descriptors)),
        classifier=fitted_types.classifier if fitted_types else None,
        training=_types_report(fitted_types) | tiling_report | {
            "fit_seconds": round(time.perf_counter() - started, 1),
            "n_images": len(paths),
            "fingerprint": data_fingerprint,
            "dataset": Path(data_dir).name,
            "target_fpr": target_fpr,
            "n_held_back": len(held_back),
            "review_fpr": review_fpr,
            "held_back_good_score_quantiles": {
                q: float(np.quantile(held_back, float(q))) for q in ("0.5", "0.9", "0.99")
            },
        },
    )


def fit_encoder(config: EncoderConfig, scorer: Scorer, device: str, forward_batch: int | None = 0,
                trunk_layer: str | None = None) -> PooledEncoder:
    """The encoder a fit encodes with, its passes of ``forward_batch`` images (0: the fastest
    for what ``scorer`` needs, measured here)."""
    encoder = PooledEncoder(config, device=device, trunk_layer=trunk_layer)
    if forward_batch == 0:
        encoder.fastest_forward_batch(encoder.blank(), FORWARD_BATCH_UP_TO, **encoder_inputs(scorer))
    else:
        encoder.forward_batch = forward_batch
    return encoder


def _tiling(data_dir: Path, config: EncoderConfig, scorer: Scorer, good_paths: list[Path],
            search: TilingSearch | None, device: str, progress: bool) -> tuple[EncoderConfig, dict]:
    """``config`` with its tiles chosen (when unset), and the search's report for the manifest."""
    sizes = image_sizes(good_paths)
    shaped = config.with_tiles_for(sizes)
    if config.tiles is not None or search is None or not has_defect_types(data_dir):
        return shaped, {}
    defects = evenly_spaced([item.path for item in labelled_defects(data_dir)], search.max_defects)
    median = tuple(int(np.median([size[i] for size in sizes])) for i in (0, 1))
    trial = _trial_auroc(shaped, scorer, evenly_spaced(good_paths, search.max_good), defects,
                         search.holdout, device, progress)
    tiles, aurocs = search.run(shaped.tiles, median, trial)
    report = {"tiling": {"tiles": list(tiles), "labelled_defect_image_auroc": aurocs}} if aurocs else {}
    return replace(shaped, tiles=tiles), report


def _trial_auroc(config: EncoderConfig, scorer: Scorer, good: list[Path], defects: list[Path],
                 holdout: float, device: str, progress: bool):
    """tiles -> image AUROC of ``defects`` against held-out ``good`` images, from a fresh scorer
    like ``scorer`` fitted on the rest of them at that tiling."""
    def trial(tiles: Tiles) -> float:
        encoder = fit_encoder(replace(config, tiles=tiles), scorer, device)

        def encode(paths: list[Path], what: str) -> Latents:
            desc = f"tiling {tiles[0]}x{tiles[1]}: {what}"
            return encode_files(encoder, paths, progress=progress, desc=desc, **encoder_inputs(scorer))

        trial_scorer = make_scorer(scorer.name, **scorer.get_params())
        good_scores = held_back_scores(trial_scorer, encode(good, "good"), holdout)
        defect_scores = trial_scorer.score(encode(defects, "labelled defects"))
        truth = np.r_[np.zeros(len(good_scores)), np.ones(len(defect_scores))]
        return float(roc_auc_score(truth, np.r_[good_scores, defect_scores]))

    return trial


def image_sizes(paths: list[Path]) -> list[tuple[int, int]]:
    """(width, height) of each image, from its header alone."""
    sizes = []
    for path in paths:
        with Image.open(path) as image:
            sizes.append(image.size)
    return sizes


def _good_descriptors(scorer: Scorer, good: Latents, kind: str) -> np.ndarray:
    """``kind`` descriptors of the good images, the space deviations are measured in: a few
    hundred evenly spaced ones, not every one."""
    good = good.take(np.unique(np.linspace(0, len(good) - 1, min(len(good), MAX_GOOD_FOR_TYPES)).astype(int)))
    return describe(kind, good, scorer.anomaly_maps(good) if needs_anomaly_maps(kind) else None)


def _fit_types(data_dir: Path, encoder: PooledEncoder, scorer: Scorer, kind: str,
               good_descriptors: np.ndarray, options: TypeOptions, progress: bool) -> TypeFit | None:
    if not options.enabled or not has_defect_types(data_dir):
        return None
    items = labelled_defects(data_dir, options.max_per_type)
    across, down = encoder.config.tiles or (1, 1)
    views = options.views if across == down else min(options.views, SHAPE_KEEPING_VIEWS)  # no quarter turns
    if kind == TUNED:
        check_backbone(encoder.config.backbone)
        epochs = options.epochs(scorer, encoder.config.backbone)
        # the default trains at least as many steps as it was measured with; epochs asked: those
        network = TypeNetwork(epochs=epochs, weights=encoder.config.weights,
                              **({} if options.fine_tune is None else {"min_steps": 0}))
        network.to(encoder.device, encoder.config.precision)
        return fit_tuned_types(encoder, scorer, good_descriptors, items, options.classifier, network, views,
                               options.drop_suspects, progress)
    # the hot cells are read as they are by the head, which learns its own space
    space = DeviationSpace(n_components=0) if kind == "cells" else None
    model = OpenSetClassifier(make_classifier(options.classifier), space, views=views, descriptor=kind)
    describe_files = type_latents_of_files(encoder, scorer, kind)
    return fit_types(describe_files, good_descriptors, items, model, options.drop_suspects, progress)


def type_latents_of_files(encoder: PooledEncoder, scorer: Scorer, kind: str) -> DescribeFiles:
    """Encodes image files and describes them as ``kind`` (the scorer gives the anomaly maps)."""
    def describe_files(paths: list[Path], **options) -> np.ndarray:
        maps = needs_anomaly_maps(kind)
        latents = encode_files(encoder, paths, **(encoder_inputs(scorer) if maps else {}), **options)
        return describe(kind, latents, scorer.anomaly_maps(latents) if maps else None)

    return describe_files


def _types_report(fitted: TypeFit | None) -> dict:
    if fitted is None:
        return {}
    return {"defect_types": {
        "types": fitted.classifier.classes,
        "examples": len(fitted.items) - len(fitted.dropped),
        "calibration": fitted.classifier.calibration_,
        "suspects": [s.to_dict() | {"file": fitted.items[s.index].path.name} for s in fitted.suspects],
        "dropped": fitted.dropped,
    }}
