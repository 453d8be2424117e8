"""What this machine's processor can do fast, in one place: the trainer's precision and the benchmark ask here.

bf16 matmuls are fast only where the hardware executes them natively (AVX-512 BF16 / AMX on the
CPU, bf16-capable GPUs); elsewhere torch falls back to a generic kernel many times slower than
fp32. ``trainer.precision=auto`` therefore picks bf16-mixed only where bf16 is native.

fp32 matmuls: torch's CPU build uses Intel MKL, whose kernels on AMD processors run at about half
the rate of oneDNN's (bf16 already goes through oneDNN). ``linear_backend=auto`` therefore routes
fully connected layers through oneDNN on AMD CPUs (``vae_lab.linear``).
"""

from __future__ import annotations

import torch

AUTO = "auto"
BF16 = "bf16-mixed"
FP32 = "32-true"
ONEDNN = "onednn"
LINEAR_BACKENDS = ("torch", ONEDNN)


def cpu_capability() -> str:
    """torch's view of the CPU's vector instructions: ``AVX2``, ``AVX512``, ``DEFAULT`` …"""
    return torch.backends.cpu.get_cpu_capability()


def cpu_vendor() -> str:
    """The CPU's vendor id (``GenuineIntel``, ``AuthenticAMD`` …), or "" where /proc/cpuinfo is absent."""
    try:
        with open("/proc/cpuinfo") as info:
            return next((line.split(":", 1)[1].strip() for line in info if line.startswith("vendor_id")), "")
    except OSError:
        return ""


def onednn_available() -> bool:
    """This torch build can run a dense fp32 linear layer on oneDNN (the op inductor also uses)."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def fast_fp32_linear_backend() -> str:
    """Where fp32 fully connected layers run fastest on this CPU: ``onednn`` on AMD, torch's default elsewhere."""
    return ONEDNN if cpu_vendor() == "AuthenticAMD" and onednn_available() else "torch"


def cpu_has_amx() -> bool:
    """Intel AMX tiles (Sapphire Rapids and later): oneDNN's fastest bf16 matmuls."""
    return bool(torch.cpu._is_amx_tile_supported())


def cpu_has_native_bf16() -> bool:
    """oneDNN executes bf16 natively (AVX512-BF16 or AMX)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def trains_on_gpu(accelerator: str) -> bool:
    """The trainer's ``accelerator`` (``cpu``, ``gpu``/``cuda``, ``auto``) means a CUDA device."""
    return accelerator in ("gpu", "cuda") or (accelerator == AUTO and torch.cuda.is_available())


def has_native_bf16(accelerator: str) -> bool:
    """For the trainer's ``accelerator`` (``cpu``, ``gpu``/``cuda``, ``auto``)."""
    if trains_on_gpu(accelerator):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return cpu_has_native_bf16()


def describe(accelerator: str) -> str:
    if trains_on_gpu(accelerator):
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
