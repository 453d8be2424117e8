"""Importance-sampled log-likelihood (Burda et al. 2016) and the dataset-level means built on it.

log p(x) ≈ log (1/S) Σ_s p(x|z_s) p(z_s) / q(z_s|x),  z_s ~ q(z|x).

The samples come in chunks of ``chunk_size`` (a latent family may draw them chunk by chunk,
``LatentFamily.sample_in_chunks``); the decoder, whose output S × B × D is the memory hog, runs on
one chunk at a time and the chunks' log-sum-exps are combined exactly, so the estimate does not
depend on the chunk size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch.distributions import Distribution

from vae_lab.distributions.logsumexp import logsumexp

LOG2 = math.log(2.0)


def importance_sampled_log_likelihood(
    q: Distribution,
    prior: Distribution,
    log_px: Callable[[torch.Tensor], torch.Tensor],
    num_samples: int,
    chunk_size: int = 500,
) -> torch.Tensor:
    """Per-example estimate of log p(x), shape (B,).

    ``q`` has batch shape (B,); ``log_px(z)`` maps samples ``z (S, B, L)`` to ``log p(x|z) (S, B)``.
    """
    samples = q.sample((num_samples,)).split(chunk_size)  # (S, B, L); evaluation needs no gradients
    return log_mean_importance_weight(samples, lambda z: log_sum_weights(z, prior, q, log_px), num_samples)


def log_joint(z: torch.Tensor, prior: Distribution, log_px: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """log p(x, z) = log p(x|z) + log p(z) for samples ``z (S, B, L)`` -> (S, B)."""
    return log_px(z) + prior.log_prob(z)


def log_sum_weights(
    z: torch.Tensor,
    prior: Distribution,
    q: Distribution,
    log_px: Callable[[torch.Tensor], torch.Tensor],
    log_q: torch.Tensor | None = None,
) -> torch.Tensor:
    """log Σ_s p(x|z_s) p(z_s) / q(z_s|x) over one chunk of samples ``z (S, B, L)`` -> (B,);
    ``log_q``: log q(z|x) (S, B) where the caller computed it, else computed here."""
    return logsumexp(log_joint(z, prior, log_px) - (q.log_prob(z) if log_q is None else log_q), dim=0)


def log_mean_importance_weight(
    sample_chunks: Iterable[torch.Tensor], log_sum_weights: Callable[[torch.Tensor], torch.Tensor], num_samples: int
) -> torch.Tensor:
    """log (1/S) Σ_s p(x, z_s) / q(z_s|x) over S = ``num_samples`` samples of q, given in chunks
    ``z (chunk, B, L)``, and ``log_sum_weights(z) -> log Σ_chunk p(x, z) / q(z|x) (B,)``."""
    if num_samples < 1:
        raise ValueError(f"num_samples={num_samples}: importance sampling needs at least one sample")
    total = None
    for z in sample_chunks:
        chunk = log_sum_weights(z)
        total = chunk if total is None else torch.logaddexp(total, chunk)
    return total - math.log(num_samples)


def bits_per_dim(nll_nats: torch.Tensor, dim: int) -> torch.Tensor:
    """Negative log-likelihood in nats per example -> bits per dimension."""
    return nll_nats / (dim * LOG2)
