"""Holes in the aggregate posterior (the density-gap paper's metrics), DDP-safe as a torchmetrics Metric.

Over the whole evaluation set's posteriors q(z|x_k), k = 1..N, the aggregate posterior is
q_agg(z) = (1/N) Σ_k q(z|x_k). A "hole" is a region the prior covers and q_agg does not: a
decoder never trained there decodes prior samples badly. With S prior samples (a seeded stream, so
every run and every process draws the same ones) this estimates

- ``kl_prior_to_aggregate``: joint KL(p ‖ q_agg) = E_p[log p(z) − log q_agg(z)], the holes;
- ``kl_aggregate_to_prior``: joint KL(q_agg ‖ p), the direction the density-gap term trains
  (samples from q_agg: ⌈S/N⌉ from each posterior);
- where the family has per-dimension marginals (Gaussian posteriors and prior): KL(p_d ‖ q_agg,d)
  per dimension and ``cu_<thr>``, the number of dimensions with KL(p_d ‖ q_agg,d) < thr — the
  dimensions without holes; and, for the figure, KL(q_agg,d ‖ p_d) per dimension from the first
  ``AGGREGATE_DIMENSION_SAMPLES`` of the q_agg samples. Elsewhere (sphere, VampPrior) these are
  not applicable, and :attr:`LatentHoles.not_applicable` says why.

``compute`` also returns the posterior means (``posterior_means``, (N, L), gathered over
processes) for the latent-space figure.

The encoder features of the whole set are gathered (``cat`` state) and the posteriors rebuilt at
the end, so multi-process evaluation gives the single-process result. The per-dimension work is
S × N × L log-densities; it runs in chunks of prior samples, compiled where a compiler exists
(one fused kernel instead of a pass over memory per elementwise op).
"""

from __future__ import annotations

import math

import torch
from torchmetrics import Metric

from vae_lab.compiling import AUTO, CompiledOrEager, check_setting, worth_compiling
from vae_lab.distributions.logsumexp import logsumexp
from vae_lab.rng import seeded_stream

CU_THRESHOLDS = (0.01, 0.03, 0.05, 0.1)
AGGREGATE_DIMENSION_SAMPLES = 12_800
PER_DIMENSION = ("kl_prior_to_aggregate_per_dim", "kl_aggregate_to_prior_per_dim")  # vectors, not scalars


def cu_name(threshold: float) -> str:
    return f"cu_{threshold:g}"


class LatentHoles(Metric):
    full_state_update = False

    def __init__(
        self,
        prior_samples: int = 128_000,
        chunk_size: int = 128,
        seed: int = 0,
        thresholds: tuple[float, ...] = CU_THRESHOLDS,
        compile: bool | str = AUTO,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if prior_samples < 1 or chunk_size < 1:
            raise ValueError(
                f"hole metrics need prior_samples >= 1 and chunk_size >= 1, got {prior_samples}, {chunk_size}"
            )
        check_setting("eval.compile", compile)
        self.prior_samples, self.chunk_size, self.seed, self.thresholds = prior_samples, chunk_size, seed, thresholds
        self.compile = compile
        self.latent = None  # bound at the first update: the model's latent family and prior
        self.prior_fn = None
        self.add_state("features", [], dist_reduce_fx="cat")
        self.add_state("order", [], dist_reduce_fx="cat")

    def update(self, model, x: torch.Tensor, batch_index: int | None = None, **_) -> None:
        """``batch_index``: the batch's place in the whole evaluation set, so the gathered set can
        be put back in one order whatever the processes' shares (the q_agg samples depend on it);
        by default the order of the updates."""
        if batch_index is None:
            batch_index = len(self.order)
        # Plain references, not submodules: the metric must not own (or save) the model's parts.
        self.__dict__["latent"], self.prior_fn = model.latent, model.prior
        features = model.encoder(x).detach()
        self.features.append(features)
        rows = torch.arange(len(features), device=features.device)
        self.order.append(int(batch_index) * (1 << 32) + rows)

    @property
    def not_applicable(self) -> str | None:
        """Why there are no per-dimension statistics (CU), or None where there are."""
        if self.latent is None or self.latent.has_kl_per_dimension:
            return None
        return f"{self.latent.name} has no per-dimension marginals of posterior and prior"

    @torch.no_grad()
    def compute(self) -> dict[str, torch.Tensor]:
        features = self.features if isinstance(self.features, torch.Tensor) else torch.cat(self.features)
        order = self.order if isinstance(self.order, torch.Tensor) else torch.cat(self.order)
        features = features[order.argsort()]
        latent, q = self.latent, self.latent.posterior(features.float())
        prior = self.prior_fn()
        with seeded_stream(self.seed, features.device):
            z_prior = prior.sample((self.prior_samples,))
            per_posterior = math.ceil(self.prior_samples / features.shape[0])
            z_aggregate = q.sample((per_posterior,)).reshape(-1, z_prior.shape[-1])
        out = {}
        if latent.has_kl_per_dimension:
            log_p = latent.log_density_factors(prior, z_prior).double()
            kl_dims = (log_p - self._per_dimension_log_aggregate(q, z_prior)).mean(0).float()
            out["kl_prior_to_aggregate_per_dim"] = kl_dims
            out |= {cu_name(t): (kl_dims < t).sum().float() for t in self.thresholds}
            z = z_aggregate[:AGGREGATE_DIMENSION_SAMPLES]
            log_q = self._per_dimension_log_aggregate(q, z)
            log_p = latent.log_density_factors(prior, z).double()
            out["kl_aggregate_to_prior_per_dim"] = (log_q - log_p).mean(0).float()
        log_p = prior.log_prob(z_prior).double()
        out["kl_prior_to_aggregate"] = (log_p - self._joint_log_aggregate(q, z_prior)).mean().float()
        log_q = self._joint_log_aggregate(q, z_aggregate)
        out["kl_aggregate_to_prior"] = (log_q - prior.log_prob(z_aggregate).double()).mean().float()
        out["posterior_means"] = latent.posterior_mean(q)
        return out

    def _joint_log_aggregate(self, q, z: torch.Tensor) -> torch.Tensor:
        """log q_agg(z) (n,) from all n × N pairwise densities (one matmul for Gaussian and
        spherical posteriors), in chunks. Float32 suffices: the per-point rounding of the expanded
        square (~1e-3 nats at worst) averages out in the KL (float64 agrees to ~1e-8 relative)."""
        n = q.batch_shape[0]
        step = max(1, (1 << 23) // n)
        pairwise = self.latent.pairwise_log_density
        log_mixture = [logsumexp(pairwise(q, chunk), dim=1) for chunk in z.split(step)]
        return torch.cat(log_mixture).double() - math.log(n)

    def _per_dimension_log_aggregate(self, q, z: torch.Tensor) -> torch.Tensor:
        """log q_agg,d(z_d) (n, L), float64: the 1-D mixtures of N Gaussians, one per dimension."""
        # The families with per-dimension marginals are the diagonal Gaussians (GaussianLatent and
        # its BN/δ variants). log N(z; μ, σ) = −log σ − ½ ((z − μ)/σ)² + const; the constants
        # (−½ log 2π − log N, ~9 nats) are added in float64 at the end: folded into each float32
        # term their rounding (~5e-7 nats) would bias a nearly-collapsed dimension's KL (~1e-4).
        loc, scale = q.base_dist.loc, q.base_dist.scale  # (N, L)
        inverse_scale, log_weight = scale.reciprocal(), -scale.log()
        # One pass instead of logsumexp's two: every term is scaled by e^-shift with shift_d =
        # max_k log_weight_kd, so no term exceeds 1. Where a sample lies so far from every
        # component that the scaled sum underflows, its row is redone with the exact logsumexp.
        shift = log_weight.amax(0)
        kernel = _per_dimension_kernel
        if worth_compiling(self.compile, z.device.type, repays=len(z) >= 50 * self.chunk_size):
            kernel = _compiled_kernel()
        # Components along the last axis, (L, N): the kernel's sum over them runs over contiguous memory.
        components = [t.T.contiguous() for t in (loc, inverse_scale, log_weight - shift)]
        sums = torch.cat(
            [
                (kernel if len(chunk) == self.chunk_size else _per_dimension_kernel)(chunk, *components)
                for chunk in z.split(self.chunk_size)
            ]
        )
        log_q = sums.double().log() + shift.double()
        far = (sums < UNDERFLOW).any(-1)
        if far.any():
            standardised = (z[far].unsqueeze(1) - loc) * inverse_scale
            log_q[far] = logsumexp(log_weight - 0.5 * standardised.square(), dim=1).double()
        return log_q - 0.5 * math.log(2 * math.pi) - math.log(loc.shape[0])


UNDERFLOW = 1e-30  # a scaled mixture density this small has lost precision to float32 underflow


def _per_dimension_kernel(
    z: torch.Tensor, loc: torch.Tensor, inverse_scale: torch.Tensor, log_weight: torch.Tensor
) -> torch.Tensor:
    """Σ_k exp(w_dk − ½ ((z_d − μ_dk) / σ_dk)²) for samples z (n, L) and components (L, N) -> (n, L)."""
    standardised = (z.unsqueeze(-1) - loc) * inverse_scale  # (n, L, N)
    return torch.exp(log_weight - 0.5 * standardised.square()).sum(-1, dtype=torch.float64)


_COMPILED = None


def _compiled_kernel() -> CompiledOrEager:
    global _COMPILED
    if _COMPILED is None:
        _COMPILED = CompiledOrEager(_per_dimension_kernel, "the hole metrics' density kernel", dynamic=False)
    return _COMPILED
