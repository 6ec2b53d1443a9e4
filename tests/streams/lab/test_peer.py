"""The peer-comparison harness (streams/lab/peer.py) on a tiny copy of deeppcb-patches.

anomalib is an optional extra ('latentline[compare]'), not installed in CI: skipped there.
"""

from pathlib import Path

import pytest

from latentline.models.encoding import compat  # noqa: F401  # before anomalib imports torchvision

pytest.importorskip("anomalib")

from latentline.streams.lab.peer import run_anomalib  # noqa: E402
from tests.conftest import copy_subset  # noqa: E402

TINY = {("train", "good"): 20, ("test", "good"): 10, ("test", "open"): 10}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory, pcb_dir) -> Path:
    return copy_subset(pcb_dir, tmp_path_factory.mktemp("deeppcb-tiny"), TINY)


@pytest.mark.parametrize("method", ["padim", "patchcore"])
def test_run_anomalib_returns_a_table_row(tiny_data, method):
    row = run_anomalib(tiny_data, method, image_size=64, coreset_ratio=0.1)
    assert row["library"].startswith("anomalib ")
    assert row["method"] == method
    assert row["backbone"] == "mobilenet_v2"
    assert row["image_size"] == 64
    assert (row["n_train"], row["n_test"]) == (20, 20)
    assert 0 <= row["image_auroc"] <= 1
    assert set(row["image_auroc_by_type"]) == {"open"}
    assert row["pixel_auroc"] is None
    assert row["fit_seconds"] > 0 and row["images_per_second"] > 0 and row["backbone_images_per_second"] > 0


def test_max_train_caps_the_training_images(tiny_data):
    row = run_anomalib(tiny_data, "padim", image_size=64, max_train=8)
    assert row["n_train"] == 8


def test_unknown_method_is_refused(tiny_data):
    with pytest.raises(ValueError, match="padim"):
        run_anomalib(tiny_data, "draem", image_size=64)
