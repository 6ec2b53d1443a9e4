"""Where and at which precision the encoder runs."""

import contextlib

import torch

from latentline.models.encoding.config import Precision

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def select_device(requested: str = "auto") -> torch.device:
    """``auto`` takes the GPU when one exists; otherwise the named device."""
    if requested != "auto":
        return torch.device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def resolve_precision(device: torch.device, requested: Precision) -> Precision:
    """``auto``: the reduced precision this device computes natively, else fp32.

    Measured with MobileNetV2 at 320 px, batch 16: on a CPU with AVX-512 BF16 / AMX, bf16
    autocast runs about twice as fast as fp32; on an AVX2-only CPU (no native bf16) oneDNN
    emulates it and the same forward pass is about 9x *slower* (10.5 s against 1.2 s). Fit
    resolves ``auto`` once and the bundle records the concrete choice, because bf16 moves the
    features by about 5 % and a bank must be searched at the precision it was built at.
    """
    if requested != "auto":
        return requested
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return "bf16"
    return "fp32"


def is_emulated(device: torch.device, precision: Precision) -> bool:
    """bf16 asked of a CPU without native support: correct, but many times slower."""
    return device.type == "cpu" and precision == "bf16" and resolve_precision(device, "auto") != "bf16"


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
