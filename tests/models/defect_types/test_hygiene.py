"""Data hygiene flags a mislabelled example and leaves clean ones alone."""

import numpy as np

from latentline.models.defect_types.hygiene import Hygiene
from latentline.models.defect_types.logistic import LogisticClassifier


def test_a_mislabelled_example_is_a_suspect():
    rng = np.random.default_rng(0)
    centres = np.eye(8)[:3]
    vectors = np.concatenate([c + 0.15 * rng.normal(size=(25, 8)) for c in centres])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = np.repeat(np.array(["a", "b", "c"]), 25)
    labels[3] = "b"  # an "a" filed under b
    suspects = Hygiene(LogisticClassifier()).suspects(vectors, labels)
    by_index = {s.index: s for s in suspects}
    assert by_index[3].predicted == "a"
    assert set(by_index[3].reasons) == {"dbscan_noise", "isolation_forest", "classifier_disagrees"}
    # the rest are at most a couple of natural outliers, and none the classifier contradicts
    assert len(suspects) <= 3
    assert all("classifier_disagrees" not in s.reasons for i, s in by_index.items() if i != 3)
