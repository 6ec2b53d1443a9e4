"""Encode image files in batches, decoding the next batch in threads while this one encodes."""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from latentline.models.encoding.encoder import PooledEncoder
from latentline.models.encoding.images import decode_image
from latentline.models.latents import Latents


def encode_files(
    encoder: PooledEncoder, paths: list[Path], batch_size: int = 32, progress: bool = True,
    transform: Callable[[Image.Image], Image.Image] | None = None, desc: str = "encoding",
    maps: bool = False, pixels: bool = False, trunk: bool = False,
) -> Latents:
    """Latents for image files, decoding the next batch in threads while this one encodes.

    ``transform``: applied to each decoded image first (a simulated lighting change, the
    flips and rotations that multiply few labelled examples). ``maps``, ``pixels``, ``trunk``:
    keep the feature maps, input pixels and trunk map too (what the scorer and the type network
    need).
    """
    def prepare(path: Path) -> np.ndarray:
        image = decode_image(path.read_bytes())
        return encoder.prepare(transform(image) if transform else image)

    chunks = [paths[i : i + batch_size] for i in range(0, len(paths), batch_size)]
    latents = []
    with ThreadPoolExecutor(max_workers=4) as pool, tqdm(
        total=len(paths), desc=desc, unit="img", disable=not progress
    ) as bar:
        pending = pool.submit(lambda c: list(map(prepare, c)), chunks[0]) if chunks else None
        for index in range(len(chunks)):
            batch = np.stack(pending.result())
            if index + 1 < len(chunks):
                pending = pool.submit(lambda c: list(map(prepare, c)), chunks[index + 1])
            latents.append(encoder.encode_views(batch, maps, pixels, trunk=trunk))
            bar.update(len(batch))
    return Latents.concat(latents)
