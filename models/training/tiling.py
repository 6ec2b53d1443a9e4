"""How finely ``fit`` tiles the images: the coarsest tiling at which the labelled defects stand out.

Good images cannot say how small a line's defects are; its labelled defect examples can. So
where train/<type>/ folders exist, ``fit`` tries the shape's own tiling (whole tiles along the
long side, models/encoding/config.py) and finer ones, each side multiplied by a ``zoom``: a
trial scorer fitted on some good images scores the labelled defects (as taken) against
held-out good ones, and the coarsest tiling whose image AUROC is within ``tolerance`` of the
best wins. A finer tiling costs its square in compute (fit and worker alike), so it has to earn
it. Without labelled defects the shape's own tiling stands, as before.

A zoom keeps at least ``min_tile_pixels`` source pixels per tile, so small images have no finer
candidate and pay nothing for the search. Why it matters, as measured on off-centre mosaics:
docs/studies.md (the tiling search).

>>> search = TilingSearch()
>>> search.candidates((1, 1), (192, 192))
[(1, 1), (2, 2), (3, 3)]
>>> search.candidates((1, 1), (80, 80)), search.candidates((4, 1), (256, 64))
([(1, 1)], [(4, 1)])
>>> search.choose({(1, 1): 0.81, (2, 2): 0.975, (3, 3): 0.98})
(2, 2)
"""

from collections.abc import Callable
from dataclasses import dataclass

from latentline.models.encoding.config import MAX_TILES

Tiles = tuple[int, int]


@dataclass(frozen=True)
class TilingSearch:
    """``zooms``: factors tried on each side of the shape's tiling; ``min_tile_pixels``: the
    fewest source pixels a tile may span along its short side; ``tolerance``: the image AUROC a
    coarser tiling may give up and still be chosen; ``max_good``/``max_defects``: the images
    each trial encodes (evenly spaced), ``holdout``: the share of those good images it scores."""

    zooms: tuple[int, ...] = (1, 2, 3)
    min_tile_pixels: int = 64
    tolerance: float = 0.01
    max_good: int = 100
    max_defects: int = 100
    holdout: float = 0.3

    def candidates(self, base: Tiles, median_size: tuple[int, int]) -> list[Tiles]:
        """The shape's tiling ``base`` and its zooms that keep ``min_tile_pixels`` per tile."""
        across, down = base
        width, height = median_size
        tile_pixels = min(width / across, height / down)
        return [(across * zoom, down * zoom) for zoom in self.zooms
                if zoom == 1 or (tile_pixels / zoom >= self.min_tile_pixels
                                 and max(across, down) * zoom <= MAX_TILES)]

    def choose(self, aurocs: dict[Tiles, float]) -> Tiles:
        """The coarsest tiling (fewest tiles) within ``tolerance`` of the best image AUROC."""
        best = max(aurocs.values())
        return min((t for t, auroc in aurocs.items() if auroc >= best - self.tolerance),
                   key=lambda t: t[0] * t[1])

    def run(self, base: Tiles, median_size: tuple[int, int],
            trial_auroc: Callable[[Tiles], float]) -> tuple[Tiles, dict[str, float]]:
        """The chosen tiling and every candidate's AUROC (``"3x3": 0.98``), from
        ``trial_auroc(tiles)``; a single candidate is taken untried."""
        candidates = self.candidates(base, median_size)
        if len(candidates) == 1:
            return candidates[0], {}
        aurocs = {tiles: trial_auroc(tiles) for tiles in candidates}
        return self.choose(aurocs), {f"{a}x{d}": round(v, 4) for (a, d), v in aurocs.items()}
