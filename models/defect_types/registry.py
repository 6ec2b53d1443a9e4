"""Every defect-type classifier by name: what a bundle manifest may name, what ``latentline fit
--classifier`` offers, what the conformance test runs.

>>> sorted(classifiers())
['logistic', 'patch-head', 'prototype']
>>> make_classifier("prototype", temperature=0.1).get_params()
{'temperature': 0.1}
"""

from latentline.models.defect_types.base import TypeClassifier
from latentline.models.defect_types.logistic import LogisticClassifier
from latentline.models.defect_types.patch_head import PatchHeadClassifier
from latentline.models.defect_types.prototype import PrototypeClassifier

DEFAULT_CLASSIFIER = "logistic"


def classifiers() -> dict[str, type[TypeClassifier]]:
    return {cls.name: cls for cls in (LogisticClassifier, PatchHeadClassifier, PrototypeClassifier)}


def make_classifier(name: str = DEFAULT_CLASSIFIER, **params) -> TypeClassifier:
    """A new, unfitted classifier; ``params`` are its constructor's arguments."""
    return classifiers()[name](**params)
