"""``latentline calibrate``: fit a quantity's direction, scale, calibration and uncertainty on
reference images of known value (a folder with ``values.csv``), in the latent space the bundle's
scorer offers (models/metrology/measurement.py)."""

from pathlib import Path

import numpy as np

from latentline.models.dataset import read_values
from latentline.models.inspector import Inspector
from latentline.models.metrology.measurement import default_space, features
from latentline.models.metrology.quantity import QuantityScale


def calibrate(inspector: Inspector, reference_dir: Path, name: str, unit: str, space: str | None = None,
              progress: bool = True, **params) -> QuantityScale:
    """Fit ``name`` on REFERENCE_DIR's images and values.csv; ``params``: QuantityScale's options."""
    values = read_values(reference_dir)
    latents = inspector.encode_files([Path(reference_dir) / f for f in values], progress=progress,
                                     desc="reference images")
    scorer = inspector.bundle.scorer
    space = space or default_space(scorer)
    scale = QuantityScale(name, unit, space=space, **params)
    return scale.fit(features(scorer, latents, space), np.array(list(values.values())))
