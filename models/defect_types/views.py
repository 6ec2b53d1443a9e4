"""Flipped and turned copies of feature maps on the device: the dihedral views of a window's
trunk that the type network averages (models/defect_types/type_network.py), in the order of
``models.encoding.images.DIHEDRAL`` (the window as cut first).

>>> import torch
>>> x = torch.arange(4.0).reshape(1, 1, 2, 2)
>>> trunk_views(x, 2)[:, 0].tolist()  # the window, then its mirror image
[[[0.0, 1.0], [2.0, 3.0]], [[1.0, 0.0], [3.0, 2.0]]]
"""

import torch

_VIEWS = (  # DIHEDRAL's transforms on the rows (2) and columns (3) axes of [N, C, H, W]
    lambda x: x,
    lambda x: x.flip(3),
    lambda x: x.flip(2),
    lambda x: x.flip((2, 3)),
    lambda x: x.rot90(1, (2, 3)),  # counter-clockwise, as PIL turns
    lambda x: x.rot90(3, (2, 3)),
    lambda x: x.transpose(2, 3),
    lambda x: x.transpose(2, 3).flip((2, 3)),
)


def trunk_views(windows: torch.Tensor, views: int) -> torch.Tensor:
    """[views * N, C, H, W]: the first ``views`` dihedral copies of ``windows`` [N, C, H, W], one
    after the other (square windows for more than four)."""
    if not 1 <= views <= len(_VIEWS):
        raise ValueError(f"views must be 1 to {len(_VIEWS)}, got {views}")
    return torch.cat([_VIEWS[k](windows) for k in range(views)])
