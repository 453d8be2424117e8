"""8-bit data: a discretised logistic per pixel (a discrete density, so bits/dim are reported)."""

from __future__ import annotations

import torch
from torch.distributions import Distribution, Independent

from vae_lab.distributions.discretized_logistic import DiscretizedLogistic
from vae_lab.likelihoods.base import Likelihood, head


class DiscretizedLogisticLikelihood(Likelihood):
    """Mean in [1/512, 1 − 1/512], log-scale in [−4.5, 0] (VampPrior settings)."""

    data_types = ("8bit",)
    has_data_space_mean = True
    reports_bits_per_dim = True

    def __init__(self, in_features: int, dim: int, num_bins: int = 256, pixelwise: bool = False):
        super().__init__()
        self.head = head(in_features, dim, outputs_per_pixel=2, pixelwise=pixelwise)
        self.num_bins = num_bins

    def forward(self, features: torch.Tensor) -> Distribution:
        mean_logit, log_scale = self.head(features).chunk(2, dim=-1)
        half_bin = 0.5 / self.num_bins
        loc = torch.sigmoid(mean_logit).clamp(half_bin, 1 - half_bin)
        log_scale = log_scale.clamp(-4.5, 0.0)
        return Independent(DiscretizedLogistic(loc, log_scale, self.num_bins), 1)
