"""The Inspector's accelerator path: patch maps left on the device between the encoder and the
search. It runs on the CPU through the same code and must give the host path's verdicts."""

import dataclasses

import numpy as np
from threadpoolctl import threadpool_limits

from latentline.models.dataset import list_images
from latentline.models.encoding.images import decode_image
from latentline.models.inspector import Inspector


class DeviceMapsInspector(Inspector):
    """What a GPU worker runs (``maps_on_device``), on the CPU."""

    @property
    def maps_on_device(self) -> bool:
        return True


def test_maps_kept_on_the_device_give_the_host_path_assessment(typed_bundle, typed_dir):
    host, device = Inspector(typed_bundle, "cpu"), DeviceMapsInspector(typed_bundle, "cpu")
    assert not host.maps_on_device  # on a CPU the host is the device
    paths = [item.path for item in list_images(typed_dir, "test")][::6]
    batch = np.stack([host.prepare(decode_image(p.read_bytes())) for p in paths])
    with threadpool_limits(limits=1):
        expected, got = host.infer(batch).assessment, device.infer(batch).assessment
    np.testing.assert_allclose(got.scores, expected.scores, rtol=1e-5)
    assert got.decisions == expected.decisions and any(m is not None for m in got.maps)
    for a, b in zip(got.type_latents, expected.type_latents):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert [t and t.label for t in got.types] == [t and t.label for t in expected.types]


def test_warm_up_sets_the_forward_pass_it_is_given_or_measures_one(typed_bundle):
    inspector = Inspector(typed_bundle, "cpu")
    assert inspector.warm_up() == 16 and inspector.encoder.forward_batch is None  # whole batches
    assert inspector.warm_up(3) == 3 == inspector.encoder.forward_batch
    with threadpool_limits(limits=1):
        assert inspector.warm_up(0, batch_size=4) in (1, 2, 4)


def test_a_tiled_bundle_measures_passes_of_as_many_images_as_a_micro_batch_holds(typed_bundle):
    """A micro-batch of 16 tiles holds two 8-tile strips: passes of 1 or 2 strips are timed, never 16."""
    eight = dataclasses.replace(typed_bundle.encoder, tiles=(8, 1))
    strips = dataclasses.replace(typed_bundle, encoder=eight)
    with threadpool_limits(limits=1):
        assert Inspector(strips, "cpu").warm_up(0, batch_size=16) in (1, 2)
