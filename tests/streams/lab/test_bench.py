"""``latentline bench``'s model figures on a real (small) bundle: the ratios come with the share
of anomalous parts they were measured on, since the defect types run on those parts only."""

import numpy as np

from models.dataset import list_images
from models.encoding.images import decode_image
from models.inspector import Inspector
from schemas import Decision
from streams.lab.bench import model_rates, run_bench
from streams.settings import Settings


def test_the_model_rates_say_how_many_parts_were_anomalous(typed_bundle, typed_dir):
    inspector = Inspector(typed_bundle, device="cpu")
    paths = [item.path for item in list_images(typed_dir, "test")][::8]  # every label
    images = np.stack([inspector.prepare(decode_image(p.read_bytes())) for p in paths])
    rates = model_rates(inspector, images, batch_size=4)
    decisions = inspector.infer(images).assessment.decisions
    assert rates["anomalous_share"] == np.mean([d is not Decision.OK for d in decisions])
    assert 0 < rates["anomalous_share"] < 1  # good parts and defects both
    assert rates["bare_model_over_encoder"] > 0 and rates["batched_over_unbatched"] > 0


def test_model_only_measures_the_cached_model_without_the_stack(typed_bundle, typed_dir, tmp_path):
    """The bundle cached for the dataset is measured as it is (same good images, same precision:
    no refit), and no pipeline figure is asked of a stack that is not there."""
    typed_bundle.save(tmp_path / "models" / typed_dir.resolve().name)
    settings = Settings(cache_dir=tmp_path, device="cpu", batch_max_size=4, forward_batch=4)
    result = run_bench(typed_dir, settings, images=16, model_only=True)
    assert result["model_version"] == typed_bundle.version
    assert result["bare_model_batched_images_per_second"] > 0 and result["searches"]
    assert not any(key.startswith(("pipeline", "steady", "worker")) for key in result)
