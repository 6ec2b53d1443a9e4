"""The window around a part's defect that the fine-tuned type network reads
(models/defect_types/type_network.py), cut from the encoder's own feature map on the device.

The encoder's pass has already computed the frozen blocks' output of every image (its
``trunk``, ``Latents.trunk``): the window is one tile of that map (``image_size`` pixels of the
input, a tile's cells) around the defect, moved inside the map where the defect is near an
edge, and area-resampled to the ``cells`` the network reads. On a one-tile bundle the window is
the whole map; on a tiled one (off-centre mosaics, line-scan strips) the defect's neighbourhood
at the resolution the scorer saw it. A fixed window rather than one cut to the defect's extent,
so that its scale says how big the defect is, as it does for the frozen descriptor. Nothing is
re-encoded and nothing leaves the device: the anomaly map gives the centre, an index gathers the
window.

Where it is centred (``centre``):

- ``centroid``: the centroid of the anomaly map's excess over its mean within one tile around
  the map's highest cell. The hottest cell is one edge or corner of a defect as often as its
  middle; the centroid follows the defect's mass.
- ``peak``: the highest cell itself.

>>> import torch
>>> blob = torch.zeros(1, 12, 12); blob[0, 4:7, 4:7] = 1.0; blob[0, 4, 4] = 1.5  # hottest at a corner
>>> window_centres(blob, tile_cells=(6, 6), centre="peak").tolist()
[[4.5, 4.5]]
>>> [round(v, 2) for v in window_centres(blob, tile_cells=(6, 6), centre="centroid")[0].tolist()]
[5.44, 5.44]
>>> trunk = torch.zeros(1, 1, 6, 9); trunk[0, 0, 2:4, 6:9] = 1.0  # a bright area at the right edge
>>> hot = torch.zeros(1, 6, 9); hot[0, 3, 8] = 1.0
>>> window = defect_windows(trunk, hot, tiles=(3, 1), cells=3, centre="peak")
>>> window.shape, float(window[0, 0, 1].min())  # moved inside the map: the area kept whole
(torch.Size([1, 1, 3, 3]), 1.0)
"""

import torch
import torch.nn.functional as F

CENTRES = ("centroid", "peak")


def defect_windows(trunk: torch.Tensor, anomaly_maps: torch.Tensor, tiles: tuple[int, int], cells: int,
                   centre: str = "centroid") -> torch.Tensor:
    """[N, C, cells, cells]: for each part's trunk map [N, C, H, W] the tile around the defect its
    anomaly map [N, h, w] shows (``centre``), resampled to ``cells``; ``tiles``: (across, down)
    tiles of the encoder's input, so one tile is (H / down, W / across) cells of the trunk."""
    n, channels, height, width = trunk.shape
    across, down = tiles
    side = (height // down, width // across)
    maps = torch.as_tensor(anomaly_maps, device=trunk.device).float()
    map_cells = (maps.shape[1] / down, maps.shape[2] / across)
    centres = window_centres(maps, map_cells, centre)
    scale = torch.tensor([height / maps.shape[1], width / maps.shape[2]], device=trunk.device)
    corners = torch.round(centres * scale - torch.tensor(side, device=trunk.device) / 2).long()
    top = corners[:, 0].clamp(0, height - side[0])
    left = corners[:, 1].clamp(0, width - side[1])
    rows = top[:, None] + torch.arange(side[0], device=trunk.device)  # [N, side_h]
    columns = left[:, None] + torch.arange(side[1], device=trunk.device)  # [N, side_w]
    parts = torch.arange(n, device=trunk.device)[:, None, None]
    windows = trunk.permute(0, 2, 3, 1)[parts, rows[:, :, None], columns[:, None, :]]  # [N, h, w, C]
    windows = windows.permute(0, 3, 1, 2)
    if windows.shape[2:] != (cells, cells):
        windows = F.adaptive_avg_pool2d(windows, cells)
    return windows.contiguous(memory_format=torch.channels_last)


def window_centres(anomaly_maps: torch.Tensor, tile_cells: tuple[float, float], centre: str) -> torch.Tensor:
    """[N, 2] (row, column) of each window's centre in map cells (a cell's middle is at +0.5);
    ``tile_cells``: the window's side in cells of the map, (rows, columns)."""
    if centre not in CENTRES:
        raise ValueError(f"unknown window centre {centre!r}: one of {', '.join(CENTRES)}")
    n, height, width = anomaly_maps.shape
    hottest = anomaly_maps.reshape(n, height * width).argmax(dim=1)
    peak = torch.stack([hottest // width, hottest % width], dim=1).float() + 0.5
    if centre == "peak" or n == 0:
        return peak
    rows = torch.arange(height, device=anomaly_maps.device).float() + 0.5
    columns = torch.arange(width, device=anomaly_maps.device).float() + 0.5
    near = (((rows[None, :, None] - peak[:, 0, None, None]).abs() <= tile_cells[0] / 2)
            & ((columns[None, None, :] - peak[:, 1, None, None]).abs() <= tile_cells[1] / 2))
    weight = (anomaly_maps - anomaly_maps.mean(dim=(1, 2), keepdim=True)).clamp_min(0) * near
    total = weight.sum(dim=(1, 2))
    centroid = torch.stack([(weight * rows[None, :, None]).sum(dim=(1, 2)),
                            (weight * columns[None, None, :]).sum(dim=(1, 2))], dim=1)
    flat = total <= 0  # no excess anywhere: the peak
    return torch.where(flat[:, None], peak, centroid / total.clamp_min(1e-30)[:, None])
