"""VampPrior (Tomczak & Welling, AISTATS 2018): p(z) = (1/K) Σ_k q(z | u_k) with learned pseudo-inputs.

The posterior is the diagonal Gaussian of :class:`GaussianLatent`; only the prior differs. It
runs the model's own encoder on K pseudo-inputs u_k, so the encoder is shared between posterior
and prior, and its density is the Gaussian mixture those K posteriors define. The KL term has
no closed form; the base class falls back to the one-sample estimate log q(z|x) − log p(z).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Distribution

from vae_lab.distributions.gaussian_mixture import DiagonalGaussianMixture
from vae_lab.latents.base import LatentFamily, PosteriorFn
from vae_lab.latents.gaussian import GaussianLatent

INITS = ("normal", "data")


class VampPriorLatent(GaussianLatent):
    """Gaussian posterior with the VampPrior.

    Pseudo-inputs are u_k = Hardtanh(0, 1)(W · one_hot(k)), i.e. row k of a (K, D) parameter
    clipped to the data range. ``init="normal"`` draws W from N(init_mean, init_std²) (the paper:
    N(0.05, 0.01²) for binary MNIST, N(0.5, 0.02²) for Frey Faces); ``init="data"`` starts from
    the first K training images plus N(0, init_std²) noise, set when training starts (see
    :class:`vae_lab.callbacks.data_init.DataDependentInit`).
    """

    # The mixture prior does not factorise over dimensions: no per-dimension KL.
    has_kl_per_dimension = False
    needs_pseudo_inputs = True
    kl = LatentFamily.kl  # the one-sample estimate: the mixture prior has no closed-form KL
    kl_per_dimension = LatentFamily.kl_per_dimension
    log_density_factors = LatentFamily.log_density_factors  # one joint factor

    def __init__(
        self,
        in_features: int,
        latent_dim: int,
        data_dim: int,
        components: int = 500,
        init: str = "normal",
        init_mean: float = 0.05,
        init_std: float = 0.01,
        init_seed: int = 0,
        min_logvar: float = -6.0,
        max_logvar: float = 2.0,
    ):
        super().__init__(in_features, latent_dim, min_logvar, max_logvar)
        if components < 1:
            raise ValueError(f"prior.components={components}: the VampPrior needs at least one pseudo-input")
        if init not in INITS:
            raise ValueError(f"prior.init={init!r}: expected one of {INITS}")
        self.init, self.init_std, self.init_seed = init, init_std, init_seed
        self.pseudo_input_weight = nn.Parameter(torch.empty(components, data_dim).normal_(init_mean, init_std))
        # Saved with the checkpoint, so a resumed run does not re-initialise from data.
        self.register_buffer("data_initialised", torch.tensor(False))
        self.to_unit_range = nn.Hardtanh(0.0, 1.0)

    @property
    def pseudo_inputs(self) -> torch.Tensor:
        """u (K, D), in the data range [0, 1]."""
        return self.to_unit_range(self.pseudo_input_weight)

    def prior(self, posterior_fn: PosteriorFn) -> Distribution:
        components = posterior_fn(self.pseudo_inputs)  # q(z | u_k), batch shape (K,)
        return DiagonalGaussianMixture(components.mean, components.stddev)

    @torch.no_grad()
    def initialise_from_data(self, train: torch.Tensor) -> None:
        """``init="data"``: W = first K training images + noise (once; resumed runs keep theirs)."""
        if self.init != "data" or bool(self.data_initialised):
            return
        k = self.pseudo_input_weight.shape[0]
        if len(train) < k:
            raise ValueError(f"prior.init=data needs {k} training examples for prior.components={k}, got {len(train)}")
        # A fixed seed makes every DDP process start from the same pseudo-inputs.
        generator = torch.Generator().manual_seed(self.init_seed)
        noise = torch.randn(self.pseudo_input_weight.shape, generator=generator) * self.init_std
        images = train[:k].reshape(k, -1).to(self.pseudo_input_weight)
        self.pseudo_input_weight.copy_(images + noise.to(images))
        self.data_initialised.fill_(True)
