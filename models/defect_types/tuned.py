"""Defect types named in a fine-tuned space, with the frozen space as the witness for unseen types
(``latentline fit --fine-tune EPOCHS``).

Its type latent (descriptor ``tuned``) is the frozen ``peak`` descriptor followed by the
fine-tuned network's embedding of the window around the defect
(models/defect_types/type_network.py, models/defect_types/windows.py). Two open-set classifiers
read it:
- ``named``, on the embedding: the type, its confidence and the review threshold. Its
  calibration fits a network per fold (``OpenSetClassifier.fit_examples``' ``fold_latents``), so
  the thresholds come from examples the network never trained on.
- ``witness``, on the ``peak`` part, as the default bundle names types: only its unknown test is
  used. A space trained to tell the known types apart pulls an unseen type onto the nearest of
  them (measured before this was built: 0.39 of deeppcb's spur kept out by distances in the tuned
  space, 0.51 in the frozen one), so a part far from every labelled example in either space is
  unknown.

A type operators teach after the fit (``learn``) was not in the network's training: the tuned
space never learned to gather its examples, so its distances there mean nothing (re-sent taught
deeppcb spur parts: 0.18-0.23 from their nearest examples against a threshold of 0.17 on the
integration-test bundle). Parts named such a type are judged unknown in the frozen space alone,
where the taught examples sit as the fitted ones do.
"""

from dataclasses import replace
from typing import Self

import numpy as np

from latentline.models.defect_types.descriptor import split_tuned as split
from latentline.models.defect_types.open_set import OpenSetClassifier, TypeDecision
from latentline.models.defect_types.type_network import TypeNetwork
from latentline.schemas.verdict import TypeStatus

DESCRIPTOR = "tuned"


class TunedOpenSet:
    descriptor = DESCRIPTOR

    def __init__(self, named: OpenSetClassifier, witness: OpenSetClassifier, network: TypeNetwork,
                 network_types: list[str] | None = None):
        self.named = named
        self.witness = witness
        self.network = network
        # the types the network was trained on (the fitted ones; bundles saved before this: all)
        self.network_types = list(named.classes if network_types is None else network_types)

    @property
    def views(self) -> int:
        return self.witness.views

    @property
    def classes(self) -> list[str]:
        return self.named.classes

    @property
    def labels_(self) -> np.ndarray:
        """The labelled examples' labels, a row per view, as OpenSetClassifier's."""
        return self.named.labels_

    @property
    def calibration_(self) -> dict:
        return self.named.calibration_ | {"witness": self.witness.calibration_}

    def get_params(self) -> dict:
        return {"tuned": {"named": self.named.get_params(), "witness": self.witness.get_params(),
                          "network": self.network.get_params(), "network_types": self.network_types}}

    def decide(self, latents: np.ndarray) -> list[TypeDecision]:
        peak, embedding = split(latents)
        taught = frozenset(self.classes) - set(self.network_types)
        return [_combined(named, seen) for named, seen in
                zip(self.named.decide(embedding, unjudged=taught), self.witness.decide(peak))]

    def learn(self, latents: np.ndarray, labels) -> "TunedOpenSet":
        """A copy that also knows these labelled type latents: both classifiers refitted, the
        network as it is (a new type's examples are placed in the space it learned)."""
        peak, embedding = split(latents)
        named, witness = self.named.learn(embedding, labels), self.witness.learn(peak, labels)
        return TunedOpenSet(named, witness, self.network, self.network_types)

    def embedding(self, latents: np.ndarray) -> np.ndarray:
        return self.named.embedding(split(latents)[1])

    def to_arrays(self) -> dict[str, np.ndarray]:
        return ({f"named_{k}": v for k, v in self.named.to_arrays().items()}
                | {f"witness_{k}": v for k, v in self.witness.to_arrays().items()}
                | {f"network_{k}": v for k, v in self.network.to_arrays().items()})

    @classmethod
    def from_arrays(cls, params: dict, arrays: dict[str, np.ndarray]) -> Self:
        def part(prefix: str) -> dict[str, np.ndarray]:
            return {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}

        spec = params["tuned"]
        return cls(OpenSetClassifier.from_arrays(spec["named"], part("named_")),
                   OpenSetClassifier.from_arrays(spec["witness"], part("witness_")),
                   TypeNetwork.from_arrays(spec["network"], part("network_")), spec.get("network_types"))


def _combined(named: TypeDecision, witness: TypeDecision) -> TypeDecision:
    """``named``'s decision, unless the frozen space finds the part unlike every known type."""
    if witness.status is TypeStatus.UNKNOWN and named.status is not TypeStatus.UNKNOWN:
        return replace(named, status=TypeStatus.UNKNOWN, reason=witness.reason + " (frozen features)")
    return named


def load_type_classifier(params: dict, arrays: dict[str, np.ndarray]) -> OpenSetClassifier | TunedOpenSet:
    """Either kind of fitted classifier from a bundle's manifest entry and arrays."""
    if "tuned" in params:
        return TunedOpenSet.from_arrays(params, arrays)
    return OpenSetClassifier.from_arrays(params, arrays)
