"""What this machine's processor can do fast, in one place: the trainer's precision and the benchmark ask here.

bf16 matmuls are fast only where the hardware executes them natively (AVX-512 BF16 / AMX on the
CPU, bf16-capable GPUs); elsewhere torch falls back to a generic kernel many times slower than
fp32. ``trainer.precision=auto`` therefore picks bf16-mixed only where bf16 is native.
"""

from __future__ import annotations

import torch

AUTO = "auto"
BF16 = "bf16-mixed"
FP32 = "32-true"


def cpu_capability() -> str:
    """torch's view of the CPU's vector instructions: ``AVX2``, ``AVX512``, ``DEFAULT`` …"""
    return torch.backends.cpu.get_cpu_capability()


def cpu_has_amx() -> bool:
    """Intel AMX tiles (Sapphire Rapids and later): oneDNN's fastest bf16 matmuls."""
    return bool(torch.cpu._is_amx_tile_supported())


def cpu_has_native_bf16() -> bool:
    """oneDNN executes bf16 natively (AVX512-BF16 or AMX)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def has_native_bf16(accelerator: str) -> bool:
    """For the trainer's ``accelerator`` (``cpu``, ``gpu``/``cuda``, ``auto``)."""
    if accelerator in ("gpu", "cuda") or (accelerator == AUTO and torch.cuda.is_available()):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return cpu_has_native_bf16()


def describe(accelerator: str) -> str:
    if accelerator in ("gpu", "cuda") or (accelerator == AUTO and torch.cuda.is_available()):
        name = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device"
        return f"GPU {name}, native bf16: {'yes' if has_native_bf16(accelerator) else 'no'}"
    amx, native = (("yes" if has else "no") for has in (cpu_has_amx(), cpu_has_native_bf16()))
    return f"CPU {cpu_capability()}, AMX: {amx}, native bf16: {native}"


def resolve_precision(requested: str | int, accelerator: str) -> tuple[str | int, str | None]:
    """The precision to train with, and a one-line warning or note (None when there is nothing to say).

    ``auto``: bf16-mixed where bf16 is native, fp32 otherwise. An explicit bf16 precision where bf16
    is not native is kept (the user asked for it) with a warning naming the capability.
    """
    native = has_native_bf16(accelerator)
    if requested == AUTO:
        chosen = BF16 if native else FP32
        return chosen, f"trainer.precision=auto picked {chosen} ({describe(accelerator)})"
    if str(requested).startswith("bf16") and not native:
        return requested, (
            f"trainer.precision={requested} on a {describe(accelerator)}: bf16 matmuls fall back to a "
            "generic kernel here, typically several times slower than fp32; use trainer.precision=auto or 32-true"
        )
    return requested, None
