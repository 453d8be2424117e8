"""Throughput and correctness of hyperspherical samplers, side by side in one run.

    python bench/vmf_sampling.py --out bench/out/vmf_sampling.json            # project venv
    .venv-bench/bin/python bench/vmf_sampling.py --out bench/out/vmf_peers.json  # with the peers

Implementations (a peer that cannot be imported is skipped, and the table says so):
  vae_lab-vMF   vae_lab.distributions.VonMisesFisher.rsample (Wood, cancellation-free, bounded)
  pythae-vMF    pythae 0.1.2 ``SVAE._sample_von_mises`` (the S-VAE sampler as pythae ships it)
  vae_lab-PS    vae_lab.distributions.PowerSpherical.rsample
  peer-PS       the ``power-spherical`` package's ``PowerSpherical.rsample``

For each m ∈ {11, 51, 129} and κ ∈ {1, 10, 100, 1000, 10000}, at batch 1024 (one row per sample,
μ random, κ the same for every row), in float32: samples/s (median over repeats), the number of
non-finite outputs, the number of samples orthogonal to μ (|μ·z| < 1e-3, counted only where the
exact law makes such a sample improbable: expected count < 1e-3, otherwise "n/a"; a rejection
sampler that leaves unaccepted rows at w = 0 shows up here), and the relative error of the sample
mean of 1 − μ·z against its exact value: 1 − A_m(κ) = 1 − I_{m/2}(κ)/I_{m/2−1}(κ) for the vMF
(mpmath), 1 − κ/(κ + m − 1) for the Power Spherical (a different law with the same κ).

vae_lab is imported through the repository root put on sys.path, so the script runs in any venv
that has torch (the peers' venv does not install vae_lab).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import platform
import signal
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vae_lab.distributions.power_spherical import PowerSpherical  # noqa: E402
from vae_lab.distributions.von_mises_fisher import VonMisesFisher  # noqa: E402

DIMS = (11, 51, 129)
KAPPAS = (1.0, 10.0, 100.0, 1000.0, 10000.0)
BATCH = 1024
ORTHOGONAL = 1e-3

# A sampler maps (loc (B, m), kappa (B,)) to samples (B, m).
Sampler = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Result:
    implementation: str
    family: str
    dim: int
    kappa: float
    samples_per_s: float | None
    samples_checked: int
    non_finite: int
    orthogonal: int | None
    mean_one_minus_cos: float | None
    exact_one_minus_cos: float
    relative_error: float | None
    note: str = ""


# --- the implementations ------------------------------------------------------------------------


def _vae_lab_vmf() -> Sampler:
    return lambda loc, kappa: VonMisesFisher(loc, kappa, validate_args=False).rsample()


def _vae_lab_power_spherical() -> Sampler:
    return lambda loc, kappa: PowerSpherical(loc, kappa, validate_args=False).rsample()


def _pythae_vmf() -> Sampler:
    from pythae.models import SVAE, SVAEConfig

    models: dict[int, SVAE] = {}

    def sample(loc: torch.Tensor, kappa: torch.Tensor) -> torch.Tensor:
        dim = loc.shape[-1]
        if dim not in models:  # the sampler is a method; any SVAE of the right latent size will do
            models[dim] = SVAE(SVAEConfig(input_dim=(1, 28, 28), latent_dim=dim))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pythae calls torch.tensor() on a tensor
            return models[dim]._sample_von_mises(loc, kappa.unsqueeze(-1))

    return sample


def _peer_power_spherical() -> Sampler:
    from power_spherical import PowerSpherical as PeerPowerSpherical

    return lambda loc, kappa: PeerPowerSpherical(loc, kappa).rsample()


IMPLEMENTATIONS: dict[str, tuple[str, Callable[[], Sampler], str]] = {
    "vae_lab-vMF": ("vmf", _vae_lab_vmf, "vae_lab"),
    "pythae-vMF": ("vmf", _pythae_vmf, "pythae"),
    "vae_lab-PS": ("power_spherical", _vae_lab_power_spherical, "vae_lab"),
    "peer-PS": ("power_spherical", _peer_power_spherical, "power-spherical"),
}


# --- exact reference values ----------------------------------------------------------------------


def exact_one_minus_cos(family: str, dim: int, kappa: float) -> float:
    if family == "power_spherical":
        return (dim - 1) / (kappa + dim - 1)
    import mpmath

    mpmath.mp.dps = 40
    return float(1 - mpmath.besseli(dim / 2, kappa) / mpmath.besseli(dim / 2 - 1, kappa))


def expected_orthogonal_count(family: str, dim: int, kappa: float, n: int) -> float:
    """n · P(|μ·z| < 1e-3) under the exact law of w = μ·z, by quadrature of its density."""
    w = np.linspace(-1, 1, 400001)[1:-1]
    log_base = 0.5 * (dim - 3) * np.log1p(-(w**2))
    log_tilt = kappa * w if family == "vmf" else kappa * np.log1p(w)
    log_density = log_base + log_tilt
    density = np.exp(log_density - log_density.max())
    inside = np.abs(w) < ORTHOGONAL
    return n * float(density[inside].sum() / density.sum())


# --- measurement -------------------------------------------------------------------------------


class _Timeout(Exception):
    pass


def _alarm(_signum, _frame):
    raise _Timeout


@dataclass
class _Setting:
    """One implementation at one (m, κ): its inputs and what it has produced so far."""

    name: str
    sampler: Sampler
    loc: torch.Tensor
    kappa: torch.Tensor
    times: list
    samples: list
    note: str = ""

    def run_once(self, device: torch.device, timeout: int) -> None:
        use_alarm = hasattr(signal, "SIGALRM")
        if use_alarm:
            signal.signal(signal.SIGALRM, _alarm)
            signal.alarm(timeout)
        try:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            z = self.sampler(self.loc, self.kappa)
            if device.type == "cuda":
                torch.cuda.synchronize()
            self.times.append(time.perf_counter() - t0)
            self.samples.append(z.detach())
        except _Timeout:
            self.note = f"one batch took over {timeout} s; stopped ({len(self.times)} batches timed)"
        finally:
            if use_alarm:
                signal.alarm(0)


def measure_all(samplers: dict[str, Sampler], dim: int, kappa: float, args) -> list[Result]:
    """Time the implementations interleaved (one batch each, in turn), so that a busy host slows
    them alike; the first call of each is a warm-up and is not timed."""
    device = torch.device(args.device)
    generator = torch.Generator().manual_seed(dim)
    loc = torch.nn.functional.normalize(torch.randn(BATCH, dim, generator=generator), dim=-1).to(device)
    kappa_t = torch.full((BATCH,), kappa, device=device)
    settings = [_Setting(name, sampler, loc, kappa_t, [], []) for name, sampler in samplers.items()]
    for setting in settings:
        setting.run_once(device, args.timeout)
        setting.times.clear()
        setting.samples.clear()
    start = time.perf_counter()
    repeats = 0
    while repeats < args.max_repeats and (
        repeats < args.min_repeats or time.perf_counter() - start < args.min_seconds * len(settings)
    ):
        for setting in settings:
            if not setting.note:
                setting.run_once(device, args.timeout)
        repeats += 1
    return [_summarise(setting, dim, kappa) for setting in settings]


def _summarise(setting: _Setting, dim: int, kappa: float) -> Result:
    family = IMPLEMENTATIONS[setting.name][0]
    exact = exact_one_minus_cos(family, dim, kappa)
    if not setting.samples:
        return Result(setting.name, family, dim, kappa, None, 0, 0, None, None, exact, None, setting.note)
    z = torch.cat(setting.samples).double().cpu()
    cosine = (z * setting.loc.double().cpu().repeat(len(setting.samples), 1)).sum(-1)
    finite = torch.isfinite(z).all(-1)
    expected_orthogonal = expected_orthogonal_count(family, dim, kappa, len(z))
    orthogonal = int((cosine.abs() < ORTHOGONAL).sum()) if expected_orthogonal < 1e-3 else None
    mean = float((1 - cosine[finite]).mean()) if bool(finite.any()) else None
    return Result(
        implementation=setting.name,
        family=family,
        dim=dim,
        kappa=kappa,
        samples_per_s=BATCH / statistics.median(setting.times),
        samples_checked=len(z),
        non_finite=int((~torch.isfinite(z)).sum()),
        orthogonal=orthogonal,
        mean_one_minus_cos=mean,
        exact_one_minus_cos=exact,
        relative_error=None if mean is None else mean / exact - 1,
        note=setting.note,
    )


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def print_table(results: list[Result], skipped: dict[str, str]) -> None:
    header = f"{'implementation':<13} {'m':>4} {'kappa':>7} {'samples/s':>11} {'non-finite':>10} "
    header += f"{'orthogonal':>10} {'rel.err E[1-mu.z]':>17}  note"
    print(header)
    print("-" * len(header))
    for r in results:
        rate = f"{r.samples_per_s:,.0f}" if r.samples_per_s is not None else "-"
        orthogonal = "n/a" if r.orthogonal is None else str(r.orthogonal)
        error = f"{r.relative_error:+.2%}" if r.relative_error is not None else "-"
        print(
            f"{r.implementation:<13} {r.dim:>4} {r.kappa:>7g} {rate:>11} {r.non_finite:>10} "
            f"{orthogonal:>10} {error:>17}  {r.note}"
        )
    for name, reason in skipped.items():
        print(f"{name}: skipped ({reason})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON results")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--min-seconds", type=float, default=0.5, help="seconds per implementation and setting")
    parser.add_argument("--min-repeats", type=int, default=5)
    parser.add_argument("--max-repeats", type=int, default=200)
    parser.add_argument("--timeout", type=int, default=120, help="seconds for one batch before giving up")
    parser.add_argument("--only", nargs="*", choices=list(IMPLEMENTATIONS), help="subset of implementations")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    samplers, skipped = {}, {}
    for name, (_, factory, _package) in IMPLEMENTATIONS.items():
        if args.only and name not in args.only:
            continue
        try:
            samplers[name] = factory()
        except ImportError as error:
            skipped[name] = f"not importable in this environment: {error}"

    results = []
    for dim in DIMS:
        for kappa in KAPPAS:
            results.extend(measure_all(samplers, dim, kappa, args))
            print(f"  done m={dim} kappa={kappa:g}", file=sys.stderr, flush=True)
    print_table(results, skipped)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "batch": BATCH,
        "dtype": "float32",
        "device": args.device,
        "threads": torch.get_num_threads(),
        "python": sys.executable,
        "platform": platform.platform(),
        "versions": {p: _version(p) for p in ("torch", "pythae", "power-spherical")},
        "skipped": skipped,
        "results": [asdict(r) for r in results],
    }
    args.out.write_text(json.dumps(report, indent=2, default=lambda x: None if math.isnan(x) else x))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
