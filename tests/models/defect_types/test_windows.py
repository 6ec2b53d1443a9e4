"""The type network's windows, cut from the trunk of a whole batch at once on the device, against
a reference written plainly: each part's centre found cell by cell, its tile sliced, resampled."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from latentline.models.defect_types.windows import defect_windows, window_centres


def reference_centre(anomaly_map: np.ndarray, tile_cells: tuple[float, float],
                     centre: str) -> tuple[float, float]:
    row, column = np.unravel_index(int(np.argmax(anomaly_map)), anomaly_map.shape)
    peak = row + 0.5, column + 0.5
    if centre == "peak":
        return peak
    total = rows = columns = 0.0
    mean = anomaly_map.mean()
    for r in range(anomaly_map.shape[0]):
        for c in range(anomaly_map.shape[1]):
            near = abs(r + 0.5 - peak[0]) <= tile_cells[0] / 2 and abs(c + 0.5 - peak[1]) <= tile_cells[1] / 2
            weight = max(anomaly_map[r, c] - mean, 0.0) if near else 0.0
            total, rows, columns = total + weight, rows + weight * (r + 0.5), columns + weight * (c + 0.5)
    return peak if total <= 0 else (rows / total, columns / total)


def reference_window(trunk: np.ndarray, anomaly_map: np.ndarray, tiles, cells: int,
                     centre: str) -> np.ndarray:
    channels, height, width = trunk.shape
    side_y, side_x = height // tiles[1], width // tiles[0]
    map_h, map_w = anomaly_map.shape
    row, column = reference_centre(anomaly_map, (map_h / tiles[1], map_w / tiles[0]), centre)
    top = int(np.clip(round(row * height / map_h - side_y / 2), 0, height - side_y))
    left = int(np.clip(round(column * width / map_w - side_x / 2), 0, width - side_x))
    tile = torch.from_numpy(trunk[None, :, top : top + side_y, left : left + side_x].copy())
    return F.adaptive_avg_pool2d(tile, cells)[0].numpy()


@pytest.mark.parametrize("centre", ["centroid", "peak"])
@pytest.mark.parametrize("tiles", [(1, 1), (3, 1), (3, 3), (1, 4)])
def test_a_batch_is_cut_as_each_part_alone_would_be(centre, tiles):
    rng = np.random.default_rng(sum(tiles))
    cells_per_tile, map_per_tile = 10, 7
    trunk = rng.normal(size=(6, 4, cells_per_tile * tiles[1], cells_per_tile * tiles[0])).astype(np.float32)
    maps = rng.random((6, map_per_tile * tiles[1], map_per_tile * tiles[0])).astype(np.float32)
    maps[0] = 0.0  # a flat map: the peak (the first cell)
    maps[1, -1, -1] += 5.0  # a defect in a corner: the window moved inside
    batched = defect_windows(torch.from_numpy(trunk), torch.from_numpy(maps), tiles, cells=5, centre=centre)
    assert batched.shape == (6, 4, 5, 5)
    for index in range(6):
        expected = reference_window(trunk[index], maps[index], tiles, 5, centre)
        np.testing.assert_allclose(batched[index].numpy(), expected, atol=1e-6)


def test_the_centres_follow_the_defects_mass_within_one_tile():
    maps = torch.zeros(2, 12, 36)
    maps[0, 4:7, 4:7] = 1.0
    maps[0, 4, 4] = 1.5
    maps[1, 5, 30] = 2.0
    maps[1, 5, 2] = 1.0  # another tile's cells do not pull the centre
    centres = window_centres(maps, (12, 12), "centroid")
    expected = [reference_centre(m.numpy(), (12, 12), "centroid") for m in maps]
    np.testing.assert_allclose(centres.numpy(), expected, atol=1e-5)
    with pytest.raises(ValueError, match="centre"):
        window_centres(maps, (12, 12), "middle")


def test_no_parts_no_windows():
    assert defect_windows(torch.zeros(0, 4, 10, 10), torch.zeros(0, 7, 7), (1, 1), 5).shape == (0, 4, 5, 5)
