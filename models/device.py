"""Where and at which precision the encoder runs."""

import contextlib
from typing import Literal

import torch

Precision = Literal["fp32", "bf16", "fp16"]
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def select_device(requested: str = "auto") -> torch.device:
    """``auto`` takes the GPU when one exists; otherwise the named device."""
    if requested != "auto":
        return torch.device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def autocast(device: torch.device, precision: Precision):
    """Mixed precision for inference; fp32 runs plain. fp16 is for GPUs only."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "fp16" and device.type == "cpu":
        raise ValueError("fp16 autocast is not supported on CPU; use bf16 or fp32")
    return torch.autocast(device_type=device.type, dtype=_DTYPES[precision])


def is_out_of_memory(exc: BaseException) -> bool:
    """The device ran out of memory: a transient fault (another batch or process held it), which
    the worker waits out and retries rather than blaming the events."""
    return isinstance(exc, torch.OutOfMemoryError)


def release_cached_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
