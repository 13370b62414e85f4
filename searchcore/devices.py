"""Where models run: the CPU, or a CUDA GPU when there is one (``--device auto|cpu|cuda``).

``auto`` (the default everywhere) takes a GPU when torch sees one and the CPU otherwise,
so the CPU build stays the plain install and nothing changes on a machine without a GPU.
A machine without an NVIDIA driver is told apart without importing torch (two seconds of
start-up for every command), by the driver's own file in /proc.

On a GPU, batches are as large as its free memory allows (``gpu_batch_size``): the
CPU's batch of 32 leaves a GPU mostly idle, while a batch past its memory fails the run.
What each job does with the device (encoder, OCR, training) is said where that job is.
"""

from __future__ import annotations

from pathlib import Path

from .errors import UsageError

__all__ = ["DEVICES", "cuda_available", "describe_device", "gpu_batch_size", "onnx_cuda_available", "resolve_device"]

DEVICES = ("auto", "cpu", "cuda")
# The largest batch a GPU gets: past it a batch no longer runs faster, and a progress bar
# would move in too few steps.
_MAX_GPU_BATCH = 1024
# The share of the GPU's free memory a batch may take: the model, the allocator's own
# reserve and another process's growth need the rest.
_MEMORY_SHARE = 0.5


def _driver_present() -> bool:
    """False only where no NVIDIA driver can be (Linux without its /proc file)."""
    if Path("/proc").is_dir():
        return Path("/proc/driver/nvidia/version").exists()
    return True  # not Linux: ask torch


def cuda_available() -> bool:
    """Whether torch can run on a CUDA GPU here."""
    if not _driver_present():
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def onnx_cuda_available() -> bool:
    """Whether ONNX Runtime can run on the GPU (onnxruntime-gpu installed, a driver present)."""
    if not _driver_present():
        return False
    try:
        import onnxruntime
    except ImportError:
        return False
    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def resolve_device(requested: str | None) -> str:
    """``cpu`` or ``cuda`` for a requested ``auto``, ``cpu`` or ``cuda`` (None: auto)."""
    requested = (requested or "auto").lower()
    if requested not in DEVICES:
        raise UsageError(f"unknown device {requested!r}; use one of {', '.join(DEVICES)}")
    if requested == "cpu":
        return "cpu"
    available = cuda_available()
    if requested == "cuda" and not available:
        raise UsageError(
            "--device cuda: no CUDA GPU is visible to torch here (torch.cuda.is_available() is False); "
            "use --device cpu or auto, or install a CUDA build of torch"
        )
    return "cuda" if available else "cpu"


def describe_device(device: str) -> str:
    """``cpu``, or ``cuda (NVIDIA H200, 139 GiB)``: what a summary names."""
    if device != "cuda":
        return device
    import torch

    properties = torch.cuda.get_device_properties(torch.cuda.current_device())
    return f"cuda ({properties.name}, {properties.total_memory / 2**30:.0f} GiB)"


def gpu_batch_size(free_bytes: int, max_tokens: int, hidden: int, heads: int, floor: int = 32) -> int:
    """Sequences per batch that fit in ``free_bytes`` of GPU memory at ``max_tokens`` each.

    Inference keeps one layer's activations at a time: per sequence, about a dozen
    hidden-sized fp32 vectors per token (attention projections, the feed-forward's 4x
    widening, the residual) plus one attention map per head (tokens x tokens). Only
    ``_MEMORY_SHARE`` of the free memory is planned for; never below ``floor`` (the
    CPU's batch), never above ``_MAX_GPU_BATCH``."""
    per_sequence = 4 * max_tokens * (12 * hidden + heads * max_tokens)
    fitted = int(free_bytes * _MEMORY_SHARE) // max(1, per_sequence)
    return max(floor, min(_MAX_GPU_BATCH, fitted))
