"""Decoder output heads: decoder features -> p(x|z) as a torch distribution over the whole x."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Bernoulli, Distribution, Independent

from vae_lab.distributions.discretized_logistic import DiscretizedLogistic


class FastBernoulli(Bernoulli):
    """Bernoulli with log p(x) = x·logit − softplus(logit): two elementwise passes instead of the
    generic cross-entropy's five; it dominates importance-sampled evaluation (S × B × D values)."""

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return (value * self.logits).sub_(F.softplus(self.logits))  # in place: one tensor less


class BernoulliLikelihood(nn.Module):
    """Binary data. Probabilities are kept in [1e-5, 1 − 1e-5] as in the VampPrior code."""

    def __init__(self, in_features: int, dim: int, min_prob: float = 1e-5):
        super().__init__()
        self.head = nn.Linear(in_features, dim)
        self.max_logit = math.log((1 - min_prob) / min_prob)

    def forward(self, features: torch.Tensor) -> Distribution:
        logits = self.head(features).clamp_(-self.max_logit, self.max_logit)  # in place: saves a pass
        return Independent(FastBernoulli(logits=logits, validate_args=False), 1)


class DiscretizedLogisticLikelihood(nn.Module):
    """8-bit data: mean in [1/512, 1 − 1/512], log-scale in [−4.5, 0] (VampPrior settings)."""

    def __init__(self, in_features: int, dim: int, num_bins: int = 256):
        super().__init__()
        self.head = nn.Linear(in_features, 2 * dim)
        self.num_bins = num_bins

    def forward(self, features: torch.Tensor) -> Distribution:
        mean_logit, log_scale = self.head(features).chunk(2, dim=-1)
        half_bin = 0.5 / self.num_bins
        loc = torch.sigmoid(mean_logit).clamp(half_bin, 1 - half_bin)
        log_scale = log_scale.clamp(-4.5, 0.0)
        return Independent(DiscretizedLogistic(loc, log_scale, self.num_bins), 1)
