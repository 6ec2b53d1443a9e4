"""Fit the defect-type classifier with a fine-tuned network (``latentline fit --fine-tune``):
models/defect_types/tuned.py says what is fitted and why.

The labelled examples are encoded once, as the default fit encodes them (flipped and turned
copies, the frozen ``peak`` descriptor), keeping the window around each one's defect cut from
the encoder's trunk (the frozen blocks' output, as the worker cuts it); then the tuned blocks
are trained on those windows once per calibration fold and once on every example.

The operating point: the distance in the tuned space is the test for an unseen type, so parts
beyond the 0.8 quantile of the held-out distances (``NAMED_REVIEW_QUANTILE``) are never named
automatically, the confidence threshold is calibrated on the rest, ``review`` reaches the 0.95
quantile (``NAMED_UNKNOWN_QUANTILE``) and ``unknown`` lies beyond it, so that ``unknown`` keeps
meaning "unlike every labelled example"; the frozen space stays a witness at its 0.99 quantile
(``WITNESS_UNKNOWN_QUANTILE``). Why these: docs/studies.md (the tuned path's operating point).
"""

from pathlib import Path

import numpy as np

from latentline.models.dataset import LabelledImage
from latentline.models.defect_types.descriptor import describe
from latentline.models.defect_types.open_set import OpenSetClassifier
from latentline.models.defect_types.registry import make_classifier
from latentline.models.defect_types.tuned import DESCRIPTOR, TunedOpenSet
from latentline.models.defect_types.type_network import TypeNetwork
from latentline.models.deviation_space import DeviationSpace
from latentline.models.encoding.encoder import PooledEncoder
from latentline.models.encoding.files import encode_files
from latentline.models.scoring.base import Scorer
from latentline.models.training.fit_types import TypeFit, encode_labelled, fit_encoded

# Calibration folds of the tuned space: a network is trained per fold, so that the held-out
# examples' distances come from a network that never saw them. Each fold costs a whole training
# (most of a fit's time on a CPU); the classifiers themselves keep their own folds.
CALIBRATION_FOLDS = 3
NAMED_REVIEW_QUANTILE = 0.8
NAMED_UNKNOWN_QUANTILE = 0.95
WITNESS_UNKNOWN_QUANTILE = 0.99


def fit_tuned_types(encoder: PooledEncoder, scorer: Scorer, good_peaks: np.ndarray,
                    items: list[LabelledImage], classifier: str, network: TypeNetwork, views: int,
                    drop_suspects: bool = False, progress: bool = True) -> TypeFit:
    """``good_peaks``: ``peak`` descriptors of good images (the witness's deviation space)."""
    import torch

    windows: list = []
    examples = encode_labelled(_peaks_keeping_windows(encoder, scorer, network, windows),
                               items, views, progress)
    witness = OpenSetClassifier(make_classifier(classifier), views=views, descriptor="peak",
                                unknown_quantile=WITNESS_UNKNOWN_QUANTILE)
    fitted, kept = fit_encoded(witness, good_peaks, examples, items, drop_suspects)
    examples = examples.take(kept)
    trunk = torch.cat(windows)[torch.from_numpy(kept)]
    named = OpenSetClassifier(make_classifier(classifier), DeviationSpace(n_components=0), views=views,
                              descriptor=DESCRIPTOR, unknown_quantile=NAMED_UNKNOWN_QUANTILE,
                              folds=CALIBRATION_FOLDS,
                              review_quantile=NAMED_REVIEW_QUANTILE,
                              view_mean=False)
    named.space.fit(np.zeros((0, 0)))
    folds = min(named.folds, len(np.unique(examples.groups)))
    count = iter(range(1, folds + 1))
    steps = network.steps_for(len(examples.labels))

    def fold_latents(fit_rows: np.ndarray) -> np.ndarray:
        """A fold's network takes as many optimiser steps as the final one: as trained as it, on
        fewer examples (with fewer, its held-out figures understate the final network's)."""
        desc = f"fine-tuning, calibration fold {next(count)}/{folds}" if progress else None
        fold = TypeNetwork(**network.get_params()).to(network.device)
        fold.fit_trunk(trunk[fit_rows], examples.labels[fit_rows], desc, steps)
        return fold.embed(trunk)

    network.fit_trunk(trunk, examples.labels, "fine-tuning the type network" if progress else None)
    named.fit_examples(network.embed(trunk), examples.labels, examples.groups, examples.originals,
                       fold_latents)
    return TypeFit(TunedOpenSet(named, witness, network), fitted.suspects, fitted.dropped, items)


def _peaks_keeping_windows(encoder: PooledEncoder, scorer: Scorer, network: TypeNetwork,
                           windows: list[np.ndarray]):
    """A DescribeFiles (models/training/fit_types.py) giving the ``peak`` descriptors of image files
    and appending the windows around their defects, cut from the encoder's trunk as the
    Inspector cuts them, to ``windows``, in the same order."""
    tiles = encoder.config.tiles or (1, 1)

    def describe_files(paths: list[Path], **options) -> np.ndarray:
        latents = encode_files(encoder, paths, maps=True, trunk=True, **options)
        anomaly_maps = scorer.anomaly_maps(latents)
        windows.append(network.windows(latents.trunk, anomaly_maps, tiles))
        return describe("peak", latents, anomaly_maps)

    return describe_files
