"""Make torchvision importable where its compiled ops do not match the installed torch.

The pinned torchvision wheel is a CUDA build. Next to the CPU build of torch its C extension
fails to load, and ``import torchvision`` then dies registering fake kernels for
``torchvision::nms`` ("operator torchvision::nms does not exist"). Defining the two missing op
schemas before the first import lets models and transforms work; detection ops such as nms and
torchvision.io stay unavailable, which latentline does not use (Pillow decodes images).

Where the extension loads (a CUDA machine, or a matching build) this module changes nothing.
Whoever imports torchvision imports this module first: models/encoding/encoder.py (the only
module of models/ that does), and streams/lab/peer.py before anomalib.
"""

import importlib.util
import logging
from pathlib import Path

import torch

log = logging.getLogger(__name__)

_MISSING_OPS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_library = None  # keep the Library alive: dropping it unregisters the schemas


def _extension_loads() -> bool:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        return True  # not installed: let the real import report it
    extension = next(Path(spec.origin).parent.glob("_C*.so"), None)
    if extension is None:
        return False
    try:
        torch.ops.load_library(str(extension))
    except OSError:
        return False
    return True


def ensure_torchvision() -> None:
    """Idempotent; call before the first ``import torchvision``."""
    global _library
    if _library is not None or _extension_loads():
        return
    log.debug("torchvision ops unavailable with this torch build; defining op schemas")
    _library = torch.library.Library("torchvision", "DEF")
    for schema in _MISSING_OPS:
        _library.define(schema)


ensure_torchvision()
