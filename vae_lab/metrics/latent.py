"""Dataset-level statistics of the latent space, DDP-safe as torchmetrics: active units, I(x; z)."""

from __future__ import annotations

import math

import torch
from torchmetrics import Metric

from vae_lab.distributions.logsumexp import logsumexp


class ActiveUnits(Metric):
    """Number of latent dimensions whose posterior-mean variance over the data exceeds ``threshold``.

    Burda et al. (2016): A_u = Cov_x(E_q[u]) > 0.01. Sums of means and squares are kept in
    float64 and summed across processes, so the result does not depend on the sharding.
    """

    full_state_update = False

    def __init__(self, latent_dim: int, threshold: float = 0.01, **kwargs):
        super().__init__(**kwargs)
        self.threshold = threshold
        self.add_state("total", torch.zeros(latent_dim, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("total_sq", torch.zeros(latent_dim, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, posterior_means: torch.Tensor) -> None:  # (B, L)
        m = posterior_means.detach().to(torch.float64)
        self.total += m.sum(0)
        self.total_sq += (m * m).sum(0)
        self.count += m.shape[0]

    def variances(self) -> torch.Tensor:
        mean = self.total / self.count
        return (self.total_sq - self.count * mean * mean) / (self.count - 1).clamp(min=1)

    def compute(self) -> torch.Tensor:
        return (self.variances() > self.threshold).sum().to(torch.float32)


class PerDimensionStatistics(Metric):
    """Per latent dimension over the evaluation set: the mean KL(q(z_d|x) ‖ p(z_d)) and the mean
    posterior scale σ_d, and every posterior's σ (for the test histogram).

    ``collapsed(threshold)``: the dimensions whose mean KL is below ``threshold`` nats — the
    posterior equals the prior there for (almost) every x. Active units (posterior-mean variance
    > 0.01) count something else: a dimension can carry a varying mean and still a tiny KL.
    Sums are float64 and summed over processes; the σ values are a ``cat`` state.
    """

    full_state_update = False

    def __init__(self, latent_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.add_state("kl_sum", torch.zeros(latent_dim, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("scale_sum", torch.zeros(latent_dim, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("scales", [], dist_reduce_fx="cat")

    def update(self, kl_per_dimension: torch.Tensor, scale: torch.Tensor) -> None:  # both (B, L)
        self.kl_sum += kl_per_dimension.detach().to(torch.float64).sum(0)
        self.scale_sum += scale.detach().to(torch.float64).sum(0)
        self.count += kl_per_dimension.shape[0]
        self.scales.append(scale.detach().float())

    def compute(self) -> dict[str, torch.Tensor]:
        scales = self.scales if isinstance(self.scales, torch.Tensor) else torch.cat(self.scales)
        return {"kl": self.kl_sum / self.count, "scale": self.scale_sum / self.count, "scales": scales}


class MutualInformation(Metric):
    """I(x; z) = E_x KL(q(z|x) ‖ q(z)) with q(z) the aggregate posterior of the whole evaluation set.

    He et al.'s estimator (1/N) Σ_i [log q(z_i|x_i) − log (1/N) Σ_j q(z_i|x_j)], z_i ~ q(z|x_i),
    with two changes: the mixture runs over all N examples instead of one batch (the per-batch
    mixture caps the estimate at log(batch size)), and log q(z_i|x_i) is taken at the same sample
    instead of as −entropy, so the two terms' noise cancels (exactly 0 when q ignores x).

    It keeps each example's encoder features and one z, and evaluates the N × N posterior
    densities at the end (``LatentFamily.pairwise_log_density``: one matmul for Gaussian and
    spherical posteriors), in chunks; ``cat`` states make the DDP result that of one process.
    """

    full_state_update = False

    def __init__(self, chunk_elements: int = 1 << 24, **kwargs):
        super().__init__(**kwargs)
        self.chunk_elements = chunk_elements
        # The latent family's h -> q(z|x) and pairwise densities, bound at the first update.
        self.posterior_fn = self.pairwise_log_density = None
        self.add_state("features", [], dist_reduce_fx="cat")
        self.add_state("z", [], dist_reduce_fx="cat")
        self.add_state("log_q_own", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, model, x: torch.Tensor, **_) -> None:
        self.posterior_fn, self.pairwise_log_density = model.latent.posterior, model.latent.pairwise_log_density
        features = model.encoder(x)
        q = self.posterior_fn(features)
        z = q.sample()
        self.features.append(features.detach())
        self.z.append(z.detach())
        self.log_q_own += q.log_prob(z).detach().to(torch.float64).sum()
        self.count += features.shape[0]

    @torch.no_grad()
    def compute(self) -> torch.Tensor:
        features, z = _cat(self.features), _cat(self.z)
        n = features.shape[0]
        q_all = self.posterior_fn(features)  # batch shape (N,)
        step = max(1, self.chunk_elements // (n * z.shape[-1]))
        log_aggregate = torch.cat(
            [logsumexp(self.pairwise_log_density(q_all, chunk), dim=1) for chunk in z.split(step)]
        ) - math.log(n)  # log q(z_i), (N,)
        mi = self.log_q_own / self.count - log_aggregate.to(torch.float64).mean()
        return mi.to(torch.float32)


def _cat(state) -> torch.Tensor:
    return torch.cat(state) if isinstance(state, list) else state
