"""Dataset-level text metrics, DDP-safe as torchmetrics: perplexity and mutual information I(x; z).

The model updates each with the evaluation batch's quantities by keyword (``model``, ``x``,
``neg_elbo``, ``nll``; see ``VAEModule(extra_metrics=...)``); a metric ignores what it does not use.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torchmetrics import Metric


class Perplexity(Metric):
    """exp(Σ nats / Σ tokens) over the whole evaluation set.

    ``source="nll"``: nats = importance-sampled −log p(x) (He et al.); ``source="neg_elbo"``:
    nats = reconstruction + KL, the ELBO bound Xu & Durrett report. ``count_tokens(x)`` gives the
    denominator per example (sentences: words + end token; bags of words: word count).
    """

    full_state_update = False

    def __init__(self, count_tokens: Callable[[torch.Tensor], torch.Tensor], source: str = "nll", **kwargs):
        super().__init__(**kwargs)
        if source not in ("nll", "neg_elbo"):
            raise ValueError(f"Perplexity(source={source!r}): expected 'nll' or 'neg_elbo'")
        self.count_tokens, self.source = count_tokens, source
        self.requires_nll = source == "nll"  # the model skips it when it draws no importance samples
        self.add_state("nats", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("tokens", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, x: torch.Tensor, neg_elbo: torch.Tensor | None = None, nll=None, **_) -> None:
        nats = nll if self.source == "nll" else neg_elbo
        if nats is None:  # no importance samples drawn in this stage
            return
        self.nats += nats.detach().to(torch.float64).sum()
        self.tokens += self.count_tokens(x).to(torch.float64).sum()

    def compute(self) -> torch.Tensor:
        return torch.exp(self.nats / self.tokens).to(torch.float32)


class MutualInformation(Metric):
    """I(x; z) = E_x KL(q(z|x) ‖ q(z)) with q(z) the aggregate posterior of the whole evaluation set.

    He et al.'s estimator (1/N) Σ_i [log q(z_i|x_i) − log (1/N) Σ_j q(z_i|x_j)], z_i ~ q(z|x_i),
    with two changes: the mixture runs over all N examples instead of one batch (the per-batch
    mixture caps the estimate at log(batch size)), and log q(z_i|x_i) is taken at the same sample
    instead of as −entropy, so the two terms' noise cancels (exactly 0 when q ignores x).

    It keeps each example's encoder features and one z, and evaluates the N × N posterior
    densities at the end, in chunks; ``cat`` states make the DDP result that of one process.
    Works for any latent family whose posterior ``log_prob`` broadcasts over a sample dimension.
    """

    full_state_update = False

    def __init__(self, chunk_elements: int = 1 << 24, **kwargs):
        super().__init__(**kwargs)
        self.chunk_elements = chunk_elements
        self.posterior_fn = None  # the latent family's h -> q(z|x), bound at the first update
        self.add_state("features", [], dist_reduce_fx="cat")
        self.add_state("z", [], dist_reduce_fx="cat")
        self.add_state("log_q_own", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, model, x: torch.Tensor, **_) -> None:
        self.posterior_fn = model.latent.posterior
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
            [torch.logsumexp(q_all.log_prob(chunk.unsqueeze(1)), dim=1) for chunk in z.split(step)]
        ) - math.log(n)  # log q(z_i), (N,)
        mi = self.log_q_own / self.count - log_aggregate.to(torch.float64).mean()
        return mi.to(torch.float32)


def _cat(state) -> torch.Tensor:
    return torch.cat(state) if isinstance(state, list) else state


def text_metrics(count_tokens: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, Metric]:
    """The text evaluation metrics, fresh for one stage: perplexities and mutual information."""
    return {
        "ppl": Perplexity(count_tokens, source="nll"),
        "ppl_elbo": Perplexity(count_tokens, source="neg_elbo"),
        "mi": MutualInformation(),
    }
