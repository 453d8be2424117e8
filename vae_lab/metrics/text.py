"""Dataset-level text metrics, DDP-safe as torchmetrics: perplexities.

The model updates each with the evaluation batch's quantities by keyword (``model``, ``x``,
``neg_elbo``, ``nll``; see ``VAEModule(extra_metrics=...)``); a metric ignores what it does not use.
"""

from __future__ import annotations

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


def text_metrics(count_tokens: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, Metric]:
    """The text evaluation metrics, fresh for one stage: perplexities (mutual information is
    every model's, see ``vae_lab.metrics.latent``)."""
    return {
        "ppl": Perplexity(count_tokens, source="nll"),
        "ppl_elbo": Perplexity(count_tokens, source="neg_elbo"),
    }
