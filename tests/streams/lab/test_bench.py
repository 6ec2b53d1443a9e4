"""``latentline bench``'s model figures on a real (small) bundle: the ratios come with the share
of anomalous parts they were measured on, since the defect types run on those parts only."""

from dataclasses import replace

import numpy as np

from latentline.models.dataset import list_images
from latentline.models.encoding.images import decode_image
from latentline.models.inspector import Inspector
from latentline.schemas import Decision
from latentline.streams.lab.bench import model_rates, run_bench
from latentline.streams.lab.cached_model import _still_fits, defaults_key
from latentline.streams.settings import Settings


def test_the_model_rates_say_how_many_parts_were_anomalous(typed_bundle, typed_dir):
    inspector = Inspector(typed_bundle, device="cpu")
    paths = [item.path for item in list_images(typed_dir, "test")][::8]  # every label
    images = np.stack([inspector.prepare(decode_image(p.read_bytes())) for p in paths])
    rates = model_rates(inspector, images, batch_size=4)
    decisions = inspector.infer(images).assessment.decisions
    assert rates["anomalous_share"] == np.mean([d is not Decision.OK for d in decisions])
    assert 0 < rates["anomalous_share"] < 1  # good parts and defects both
    assert rates["bare_model_over_encoder"] > 0


def test_model_only_measures_the_cached_model_without_the_stack(typed_bundle, typed_dir, tmp_path):
    """The bundle cached for the dataset is measured as it is (same good images, same precision:
    no refit), and no pipeline figure is asked of a stack that is not there."""
    cached = replace(typed_bundle, training=typed_bundle.training | {"lab_defaults": defaults_key()})
    cached.save(tmp_path / "models" / typed_dir.resolve().name)
    settings = Settings(cache_dir=tmp_path, device="cpu", batch_max_size=4, forward_batch=4)
    result = run_bench(typed_dir, settings, images=16, model_only=True)
    assert result["model_version"] == typed_bundle.version
    assert result["bare_model_batched_images_per_second"] > 0 and result["searches"]
    assert not any(key.startswith(("pipeline", "steady", "worker")) for key in result)


def test_a_cached_model_fitted_with_other_defaults_is_stale(typed_bundle, typed_dir, tmp_path):
    train = [item.path for item in list_images(typed_dir, "train", "good")]
    for key, stale in ((defaults_key(), False), ("another", True), (None, True)):
        training = {k: v for k, v in typed_bundle.training.items() if k != "lab_defaults"}
        bundle = replace(typed_bundle, training=training | ({"lab_defaults": key} if key else {}))
        assert _still_fits(bundle.save(tmp_path / str(key)), train) is not stale


def test_the_model_is_measured_at_each_defect_share_a_line_sees(typed_bundle, typed_dir, tmp_path):
    """A good line, a line in trouble and a burst where every part is defective: the share of
    anomalous parts each run saw follows the share of defects it was given (the small 96 px
    bundle finds about half of the test defects)."""
    from latentline.streams.lab.bench import DEFECT_SHARES

    settings = Settings(cache_dir=tmp_path, device="cpu", batch_max_size=4, forward_batch=4)
    result = run_bench(typed_dir, settings, images=16, model_only=True,
                       model_dir=_saved(typed_bundle, tmp_path))
    shares = result["defect_shares"]
    assert list(result["bare_model_over_encoder_by_share"]) == [str(s) for s in DEFECT_SHARES]
    assert shares["1.0"]["anomalous_share"] >= 0.4 > 0.2 >= shares["0.02"]["anomalous_share"]
    assert result["batched_over_unbatched"] > 0 and result["command"] and result["machine"]["cpus"] > 0


def _saved(bundle, tmp_path):
    bundle.save(tmp_path / "bundle")
    return tmp_path / "bundle"


def test_the_speed_page_is_written_from_the_bench_json(tmp_path):
    """docs/bench/speed.md is generated: every share's row and the provenance come from the JSON."""
    import json

    from latentline.streams.lab.bench_page import main

    result = {"commit": "abc1234", "command": "latentline bench --data X",
              "machine": {"cpus": 2, "gpu": None},
              "device": "cpu", "precision": "fp32", "batch_size": 16, "forward_batch": 2,
              "bare_model_over_encoder_by_share": {"0.02": 0.91, "0.2": 0.8, "1.0": 0.62},
              "defect_shares": {share: {"anomalous_share": float(share),
                                        "bare_model_batched_images_per_second": 30.0}
                                for share in ("0.02", "0.2", "1.0")},
              "batched_over_unbatched": 1.7, "worker_peak_rss_bytes": 900_000_000}
    (tmp_path / "bench.json").write_text(json.dumps(result))
    assert main([str(tmp_path / "bench.json"), str(tmp_path / "page" / "speed.md")]) == 0
    page = (tmp_path / "page" / "speed.md").read_text()
    assert "abc1234" in page and "latentline bench --data X" in page
    assert "| 1.0 | 1.00 | 30.0 | 0.62 |" in page and "| batched_over_unbatched | 1.7 |" in page
