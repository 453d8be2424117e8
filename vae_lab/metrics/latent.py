"""Dataset-level statistics of the latent space, DDP-safe as torchmetrics."""

from __future__ import annotations

import torch
from torchmetrics import Metric


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
