"""The density-gap objective (Zhang et al., NeurIPS 2022): the KL of the ELBO replaced by the gap
between the aggregate posterior and the prior, estimated on the batch.

For a batch of B posteriors, draw ``samples`` = M reparameterised samples from each and split the
batch into chunks of ``aggregate`` = b posteriors. In each chunk, pool its b·M samples and take
q_agg(z) = (1/b) Σ_k q(z | x_k); the chunk's gap is the mean over its pooled samples of
Σ_f [log q_agg,f(z) − log p_f(z)] — a Monte-Carlo estimate of KL(q_agg ‖ p). The factors f are
the latent dimensions where the family factorises (Gaussian: Σ_d KL(q_agg,d ‖ N(0, 1)), the
paper's form) and the joint density otherwise (vMF against the uniform density on the sphere).
Everything runs in log space (logsumexp), so collapsed posteriors (σ → 0) stay finite.

With b = 1 each chunk is one posterior and the term is the ordinary M-sample Monte-Carlo KL: a
plain VAE. The term takes β and its schedule exactly as the KL does in :class:`ELBO`; the
reported −ELBO and KL stay the model's true ones. Each example carries its chunk's gap, so the
batch mean of the loss is the mean over chunks (weighted by size when the last chunk is short).
"""

from __future__ import annotations

import torch

from vae_lab.latents.aggregate import component_log_densities, log_mixture
from vae_lab.objectives.base import Terms
from vae_lab.objectives.elbo import ELBO


class DensityGapELBO(ELBO):
    def __init__(self, aggregate: int = 32, samples: int = 32, **elbo):
        super().__init__(**elbo)
        for key, value in (("aggregate", aggregate), ("samples", samples)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"objective.{key}={value!r}: must be a positive integer")
        self.aggregate, self.samples = aggregate, samples

    def regulariser(self, terms: Terms) -> torch.Tensor:
        latent, q = terms.latent, terms.q
        z = latent.rsample_many(q, self.samples)  # (M, B, L)
        m, b = z.shape[:2]
        chunk = torch.arange(b, device=z.device) // self.aggregate  # each posterior's chunk
        pooled = z.reshape(m * b, -1)  # sample n belongs to posterior n % b
        same_chunk = chunk.repeat(m).unsqueeze(1) == chunk.unsqueeze(0)  # (M·B, B)
        log_q_agg = log_mixture(component_log_densities(latent, q, pooled), same_chunk)  # (M·B, F)
        log_p = latent.log_density_factors(terms.p, pooled)  # (M·B, F)
        gap = (log_q_agg - log_p).sum(-1).reshape(m, b).mean(0)  # each posterior's samples, (B,)
        chunks = int(chunk[-1]) + 1
        total = torch.zeros(chunks, dtype=gap.dtype, device=gap.device).index_add(0, chunk, gap)
        size = torch.bincount(chunk, minlength=chunks).to(gap.dtype)
        return (total / size)[chunk]  # the chunk's mean over its pooled samples, per example

    def logs(self, regulariser: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"density_gap": regulariser.mean()}
