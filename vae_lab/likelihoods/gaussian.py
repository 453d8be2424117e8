"""Continuous data: p(x|z) = N(μ(z), γ I) with one scalar variance γ, learned or fixed.

Dai, Wang & Wipf (2020): with γ learned, its optimum is the model's mean squared reconstruction
error per dimension, γ* = (1/nd) Σ E_q ‖x − μ(z)‖², and a γ fixed too large prunes latent
dimensions (posterior collapse). γ is log-parameterised (always > 0) and logged over training
(``train/gamma``); the test metrics put it beside the per-dimension MSE (``test/gamma``,
``test/mse``) so the identity can be read off. A density of continuous data: never reported as
bits per dimension.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal

from vae_lab.likelihoods.base import Likelihood, head


class GaussianLikelihood(Likelihood):
    data_types = ("continuous",)
    has_data_space_mean = True

    def __init__(
        self, in_features: int, dim: int, learn_variance: bool = True, gamma: float = 1.0, pixelwise: bool = False
    ):
        super().__init__()
        if not gamma > 0:
            raise ValueError(f"likelihood.gamma={gamma}: the decoder variance must be > 0")
        self.head = head(in_features, dim, pixelwise=pixelwise)
        log_gamma = torch.tensor(math.log(gamma))
        if learn_variance:
            self.log_gamma = nn.Parameter(log_gamma)
        else:
            self.register_buffer("log_gamma", log_gamma)
        self.learn_variance = learn_variance

    @property
    def gamma(self) -> torch.Tensor:
        return self.log_gamma.exp()

    def forward(self, features: torch.Tensor) -> Distribution:
        mean = self.head(features)
        return Independent(Normal(mean, (0.5 * self.log_gamma).exp().expand_as(mean), validate_args=False), 1)

    def training_logs(self) -> dict[str, torch.Tensor]:
        return {"gamma": self.gamma.detach()}
