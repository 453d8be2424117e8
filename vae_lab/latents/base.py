"""The latent-family interface: posterior q(z|x), prior p(z), the true KL and its gradient correction.

A latent family is the only thing that differs between a Gaussian VAE, a VampPrior VAE and a
hyperspherical (vMF) VAE. It never decides what is minimised (that is the objective's job,
``vae_lab.objectives``). The model (``vae_lab.model.VAEModule``) calls only the methods below,
so a new family is one file here plus one YAML file in ``conf/prior``.

A family declares what it can do as class attributes; evaluation, objectives and media ask
these instead of testing types:

- ``has_density``: ``q.log_prob`` and ``p.log_prob`` exist (importance sampling, MI, holes);
- ``has_kl_per_dimension``: a closed-form KL per latent dimension (free bits, per-dimension
  figures), see :meth:`kl_per_dimension`;
- ``can_sample_prior``: ``p.sample`` works (prior samples in media);
- ``needs_pseudo_inputs``: the prior is built from learned points of the data space (VampPrior),
  so the data must name how to initialise them (``data.pseudo_inputs``);
- ``posterior_density_compiles``: ``q.log_prob`` compiles cheaply, so importance-sampled
  evaluation fuses it into its compiled pass (not the vMF's: Bessel functions);
- ``lives_on_sphere``: z lies on the unit sphere S^(latent_dim−1) in R^latent_dim (the
  hyperspherical paper's "d" then has two readings, see ``experiment=svae_mnist``).

:meth:`log_density_factors` gives a density in its independent factors: one per latent
dimension where posterior and prior factorise (Gaussian), else one joint factor (sphere,
VampPrior). The density-gap objective and the hole metrics are written once against it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn
from torch.distributions import Distribution, kl_divergence

# Maps encoder inputs x to the posterior q(z|x). The VampPrior needs it, because its prior is
# the posterior evaluated at learned pseudo-inputs.
PosteriorFn = Callable[[torch.Tensor], Distribution]


class CapabilityError(ValueError):
    """A part was asked for something it declares it cannot do (e.g. free bits without a per-dimension KL)."""


class LatentFamily(nn.Module):
    """Turns encoder features ``h (B, H)`` into q(z|x); defines p(z) and the KL.

    Subclasses implement :meth:`posterior` and :meth:`prior`. Distributions have batch shape
    ``(B,)`` and event shape ``(latent_dim,)`` so ``log_prob`` returns one value per example.
    """

    has_density = True
    has_kl_per_dimension = False
    can_sample_prior = True
    needs_pseudo_inputs = False
    posterior_density_compiles = True
    lives_on_sphere = False

    def __init__(self, in_features: int, latent_dim: int):
        super().__init__()
        if latent_dim < 1:
            raise ValueError(f"latent={latent_dim}: the latent dimension must be a positive integer")
        self.in_features = in_features
        self.latent_dim = latent_dim

    @property
    def name(self) -> str:
        return type(self).__name__

    def posterior(self, h: torch.Tensor) -> Distribution:
        raise NotImplementedError

    def prior(self, posterior_fn: PosteriorFn) -> Distribution:
        """p(z). ``posterior_fn`` is the model's x -> q(z|x) map (used by the VampPrior)."""
        raise NotImplementedError

    def rsample(self, q: Distribution) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One reparameterised sample z (B, L) and what :meth:`gradient_correction` needs from
        it (None for families sampled without rejection)."""
        return q.rsample(), None

    def rsample_many(self, q: Distribution, n: int) -> torch.Tensor:
        """``n`` reparameterised samples per posterior, (n, B, L) (the density-gap term)."""
        return q.rsample((n,))

    def sample_in_chunks(self, q: Distribution, n: int, chunk_size: int) -> Iterable[torch.Tensor]:
        """``q.sample((n,))`` (n, B, L), as consecutive chunks of at most ``chunk_size`` samples
        (importance-sampled evaluation)."""
        return q.sample((n,)).split(chunk_size)

    def log_density_factors(self, dist: Distribution, z: torch.Tensor) -> torch.Tensor:
        """log density of ``z`` under ``dist`` (a posterior or the prior) per independent factor,
        shape ``broadcast(z.shape[:-1], batch_shape) + (F,)``: F = L where the family has
        per-dimension marginals (``has_kl_per_dimension``), else F = 1, the joint density."""
        return dist.log_prob(z).unsqueeze(-1)

    def pairwise_log_density(self, q: Distribution, z: torch.Tensor) -> torch.Tensor:
        """Joint log q(z_n | x_k) for every sample and every posterior of ``q`` (batch (K,)):
        z (n, L) -> (n, K). Families whose density is a function of a linear map of z override
        it with a matmul (mutual information, hole metrics)."""
        return q.log_prob(z.unsqueeze(-2))

    def kl(self, q: Distribution, p: Distribution, z: torch.Tensor) -> torch.Tensor:
        """KL(q‖p) per example (B,): closed form when registered, else the one-sample estimate at z."""
        try:
            return kl_divergence(q, p)
        except NotImplementedError:
            return q.log_prob(z) - p.log_prob(z)

    def kl_per_dimension(self, q: Distribution, p: Distribution) -> torch.Tensor:
        """Closed-form KL(q_d‖p_d) per example and dimension (B, L); only where ``has_kl_per_dimension``."""
        raise CapabilityError(
            f"{self.name} has no closed-form per-dimension KL (its posterior or prior does not factorise "
            "over dimensions); pick a family that has one (prior=gauss) or an objective that does not need it"
        )

    def gradient_correction(
        self, q: Distribution, sample_info: torch.Tensor | None, sample_loss: torch.Tensor
    ) -> torch.Tensor | None:
        """A zero-valued term whose gradient corrects a biased reparameterisation (vMF), or None.

        ``sample_info`` is what :meth:`rsample` returned beside z; ``sample_loss`` is the
        per-example loss the objective computed at that z (B,).
        """
        return None

    def initialise_from_data(self, train: torch.Tensor) -> None:
        """Data-dependent initialisation at fit start (VampPrior ``init=data``); nothing by default."""

    def posterior_scale(self, q: Distribution) -> torch.Tensor | None:
        """Per-dimension posterior standard deviations (B, L) where the family has them, else None."""
        return None

    def posterior_mean(self, q: Distribution) -> torch.Tensor:
        """Summary used for active units (its variance over the data, per dimension)."""
        return q.mean
