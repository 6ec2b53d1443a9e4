"""latentline: streaming visual inspection in latent space.

The public API, one import root for notebooks, camera software and plant code::

    import latentline

    bundle = latentline.fit_bundle(Path("my-line"))        # fit on my-line/train
    inspector = latentline.Inspector(bundle)                 # score batches offline
    client = latentline.CameraClient(settings)               # publish images from a camera

The three rooms of the code are subpackages: ``latentline.schemas`` (the event contracts),
``latentline.models`` (pixels in, numbers out; no Kafka, no object store) and
``latentline.streams`` (the worker, the station, the lab tools and the command). Every name
below is loaded on first use, so that ``import latentline.streams.client`` on a camera PC loads
neither PyTorch nor the worker.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("latentline")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0.0.0"

# name -> the module that defines it
_PUBLIC = {
    "Inspector": "latentline.models.inspector",
    "ModelBundle": "latentline.models.bundle",
    "EncoderConfig": "latentline.models.encoding.config",
    "fit_bundle": "latentline.models.training.fit",
    "TypeOptions": "latentline.models.training.fit",
    "CameraClient": "latentline.streams.client",
    "CameraEvent": "latentline.schemas",
    "Verdict": "latentline.schemas",
    "Decision": "latentline.schemas",
    "TypeStatus": "latentline.schemas",
    "ReviewRequest": "latentline.schemas",
    "Label": "latentline.schemas",
    "Alert": "latentline.schemas",
    "DeadLetter": "latentline.schemas",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'latentline' has no attribute {name!r}")
    value = getattr(import_module(_PUBLIC[name]), name)
    globals()[name] = value  # loaded once
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
