"""The versioned model bundle: a directory with a manifest and the fitted arrays.

streams/ moves bundles to and from the object store; here they are plain directories.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from latentline.models.defect_types.open_set import OpenSetClassifier
from latentline.models.defect_types.tuned import TunedOpenSet, load_type_classifier
from latentline.models.encoding.config import EncoderConfig
from latentline.models.errors import UserInputError
from latentline.models.metrology.quantity import QuantityScale
from latentline.models.online.latent_reference import LatentReference
from latentline.models.scoring.base import Scorer
from latentline.models.scoring.registry import scorer_class
from latentline.models.scoring.threshold import Thresholds

FORMAT = 5  # 2: latent reference (drift, novelty); 3: defect types; 4: feature maps, scorer choice;
# 5: a fixed patch grid (EncoderConfig.map_grid)
MANIFEST = "manifest.json"
SCORER_ARRAYS = "scorer.npz"
REFERENCE_ARRAYS = "reference.npz"
CLASSIFIER_ARRAYS = "classifier.npz"
QUANTITY_ARRAYS = "quantities.npz"


@dataclass
class ModelBundle:
    version: str
    created_at: datetime
    encoder: EncoderConfig
    scorer: Scorer
    thresholds: Thresholds
    reference: LatentReference
    # when fitted with labelled defect types (tuned: ``fit --fine-tune``)
    classifier: OpenSetClassifier | TunedOpenSet | None = None
    training: dict = field(default_factory=dict)
    quantities: dict[str, QuantityScale] = field(default_factory=dict)  # ``latentline calibrate``

    @property
    def descriptor(self) -> str:
        """The type latent its classifier reads and novelty's directions are taken of
        (models/defect_types/descriptor.py); fit gives both the same one."""
        if self.classifier:
            return self.classifier.descriptor
        return self.reference.descriptor or "centre"

    def type_latent_key(self) -> str:
        """Type latents kept under equal keys are interchangeable: the same encoder, the same
        descriptor (the centre view's keep the encoder's key, as before there was a choice)."""
        key = self.encoder.key()
        return key if self.descriptor == "centre" else f"{key}-{self.descriptor}"

    def manifest(self) -> dict:
        return {
            "format": FORMAT,
            "version": self.version,
            "created_at": self.created_at.isoformat(),
            "encoder": self.encoder.to_dict(),
            "scorer": {"name": self.scorer.name, "params": self.scorer.get_params()},
            "thresholds": self.thresholds.to_dict(),
            "reference": {"params": self.reference.get_params()},
            "classifier": {"params": self.classifier.get_params()} if self.classifier else None,
            "training": self.training,
            "quantities": {name: scale.to_dict() for name, scale in self.quantities.items()},
        }

    def save(self, directory: Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(directory / SCORER_ARRAYS, **self.scorer.to_arrays())
        np.savez(directory / REFERENCE_ARRAYS, **self.reference.to_arrays())
        if self.classifier:
            np.savez(directory / CLASSIFIER_ARRAYS, **self.classifier.to_arrays())
        if self.quantities:
            arrays = {f"{name}/{key}": value for name, scale in self.quantities.items()
                      for key, value in scale.to_arrays().items()}
            np.savez(directory / QUANTITY_ARRAYS, **arrays)
        # The manifest goes last: a directory with a manifest is a complete bundle.
        (directory / MANIFEST).write_text(json.dumps(self.manifest(), indent=2) + "\n")
        return directory

    @classmethod
    def load(cls, directory: Path) -> "ModelBundle":
        directory = Path(directory)
        if not cls.is_bundle(directory):
            raise UserInputError(f"{directory} is not a model bundle (no {MANIFEST}): make one with "
                                 "latentline fit DATA_DIR --out FOLDER")
        manifest = json.loads((directory / MANIFEST).read_text())
        if manifest.get("format") != FORMAT:
            raise UserInputError(f"unsupported bundle format {manifest.get('format')!r} in {directory}: "
                                 "refit it with this version of latentline fit")
        scorer_cls = scorer_class(manifest["scorer"]["name"])
        with np.load(directory / SCORER_ARRAYS, allow_pickle=False) as arrays:
            scorer = scorer_cls.from_arrays(manifest["scorer"]["params"], dict(arrays))
        with np.load(directory / REFERENCE_ARRAYS, allow_pickle=False) as arrays:
            reference = LatentReference.from_arrays(manifest["reference"]["params"], dict(arrays))
        classifier = None
        if manifest.get("classifier"):
            with np.load(directory / CLASSIFIER_ARRAYS, allow_pickle=False) as arrays:
                classifier = load_type_classifier(manifest["classifier"]["params"], dict(arrays))
        return cls(
            quantities=_load_quantities(directory, manifest.get("quantities") or {}),
            version=manifest["version"],
            created_at=datetime.fromisoformat(manifest["created_at"]),
            encoder=EncoderConfig.from_dict(manifest["encoder"]),
            scorer=scorer,
            thresholds=Thresholds(**manifest["thresholds"]),
            reference=reference,
            classifier=classifier,
            training=manifest["training"],
        )

    @staticmethod
    def is_bundle(directory: Path) -> bool:
        return (Path(directory) / MANIFEST).is_file()


def _load_quantities(directory: Path, described: dict) -> dict[str, QuantityScale]:
    if not described:
        return {}
    with np.load(directory / QUANTITY_ARRAYS, allow_pickle=False) as stored:
        arrays = {tuple(key.split("/", 1)): stored[key] for key in stored.files}
    return {name: QuantityScale.from_parts(parts, {key: value for (owner, key), value in arrays.items()
                                                   if owner == name})
            for name, parts in described.items()}
