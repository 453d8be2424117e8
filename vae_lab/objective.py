"""The one objective: a β-weighted ELBO with linear β warm-up.

loss = E_q[−log p(x|z)] + β · D(q‖p), where D is the latent family's divergence (the KL in
closed form when one is registered). β = min(1, epoch / warmup_epochs), epochs counted from 1
as in the VampPrior code; warmup_epochs = 0 means β = 1 throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ELBO:
    warmup_epochs: int = 0
    max_beta: float = 1.0

    def __post_init__(self):
        if self.warmup_epochs < 0:
            raise ValueError(f"warmup={self.warmup_epochs}: the β warm-up length must be >= 0 epochs")

    def beta(self, epoch: int) -> float:
        """β for the 0-based training ``epoch``."""
        if self.warmup_epochs == 0:
            return self.max_beta
        return self.max_beta * min(1.0, (epoch + 1) / self.warmup_epochs)

    def loss(self, log_px: torch.Tensor, divergence: torch.Tensor, beta: float) -> torch.Tensor:
        """Mean over the batch of −log p(x|z) + β·D; inputs are per example, shape (B,)."""
        return (beta * divergence - log_px).mean()
