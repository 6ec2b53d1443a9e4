"""Anomaly maps on the device: Gaussian smoothing and the image score of a whole batch at once,
as tensors (``torch``), wherever the maps are (a GPU's search leaves them there).

>>> import torch
>>> maps = torch.zeros(1, 9, 9); maps[0, 4, 4] = 1.0
>>> smoothed = gaussian_smooth(maps, sigma=1.0)
>>> round(float(smoothed.sum()), 4), bool(smoothed[0, 4, 4] == smoothed.max())  # mass kept, peak kept
(1.0, True)
>>> top_cells_mean(torch.tensor([[[1.0, 0.0], [0.0, 0.0]]]), fraction=0.25).tolist()
[1.0]
"""

import torch
import torch.nn.functional as F

TRUNCATE = 4.0  # the kernel reaches this many sigmas each way, as scipy.ndimage.gaussian_filter's


def gaussian_smooth(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """[N, h, w] maps smoothed within each image by a Gaussian of ``sigma`` cells, edges repeated
    (``scipy.ndimage.gaussian_filter(maps, (0, sigma, sigma), mode="nearest")``, as a separable
    convolution of the whole batch); 0: unchanged."""
    if sigma <= 0 or maps.numel() == 0:
        return maps
    radius = int(TRUNCATE * sigma + 0.5)
    offsets = torch.arange(-radius, radius + 1, device=maps.device, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(maps.dtype)
    x = maps[:, None]
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1))
    return x[:, 0]


def top_cells_mean(maps: torch.Tensor, fraction: float) -> torch.Tensor:
    """[N] the mean of each map's highest cells (``models.scoring.base.top_mean``, on tensors)."""
    k = max(1, round(min(maps.shape[1:]) ** 2 * fraction))
    return maps.reshape(len(maps), -1).topk(k, dim=1).values.mean(dim=1)
