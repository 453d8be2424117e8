"""Text decoder heads: decoder output -> p(x|z) over a sentence or a bag of words.

Both return torch distributions whose ``log_prob(x)`` gives one value per example and broadcasts
over leading sample dimensions of z (importance sampling decodes z of shape (S, B, L)).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Distribution, constraints

from vae_lab.data.text import BOS, EOS, NUM_INPUT_ONLY, PAD, UNK
from vae_lab.distributions.logsumexp import logsumexp
from vae_lab.likelihoods.base import Likelihood
from vae_lab.linear import Linear
from vae_lab.nets.text import LatentConditionedLSTM
from vae_lab.rng import draw_for_share


def token_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """−log softmax(logits)[target] per position ``(n, T)`` from logits ``(n, T, V)``, 0 at padding.

    Cross-entropy over rows of the contiguous ``(n·T, V)`` view, in fp32 (also under bf16 autocast):
    over the transposed ``(n, V, T)`` layout torch copies the logits and normalises along a strided
    axis, which cost as much as the softmax head's matmul (the bulk of a text VAE's work).
    """
    classes = (targets - NUM_INPUT_ONLY).masked_fill(targets == PAD, -100)
    rows = logits.reshape(-1, logits.shape[-1]).float()
    return F.cross_entropy(rows, classes.reshape(-1), ignore_index=-100, reduction="none").reshape(targets.shape)


class TokenSequence(Distribution):
    """Autoregressive p(x|z) = Π_t p(x_t | x_<t, z) over padded id tensors ``x (…, T)``.

    Lazy: nothing runs until ``log_prob`` (teacher forcing) or ``sample`` (ancestral sampling).
    ``x[..., 0]`` is the start token; targets are ``x[..., 1:]``, padding masked out, so a
    sentence scores the same whatever the padding of its batch.
    """

    arg_constraints: dict = {}
    support = constraints.nonnegative_integer

    def __init__(
        self,
        decoder: LatentConditionedLSTM,
        head: nn.Linear,
        word_dropout: float = 0.0,
        max_length: int = 100,
        chunk_elements: int = 1 << 24,
    ):
        self.decoder, self.head = decoder, head
        self.word_dropout, self.max_length, self.chunk_elements = word_dropout, max_length, chunk_elements
        super().__init__(decoder.batch_shape, validate_args=False)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        rows = self.decoder.z.shape[0]
        x = x.expand(*self.batch_shape, x.shape[-1]).reshape(rows, -1)
        inputs, targets = x[:, :-1], x[:, 1:]
        if self.word_dropout > 0:  # Bowman et al.: hide input words so the decoder must use z
            uniform = draw_for_share(lambda shape: torch.rand(shape, device=x.device), inputs.shape)
            hide = (uniform < self.word_dropout) & (inputs > EOS)
            inputs = inputs.masked_fill(hide, UNK)
        # Rows in chunks, so S·B·T·V logits never sit in memory at once (importance sampling).
        step = max(1, self.chunk_elements // max(1, inputs.shape[1] * self.head.out_features))
        out = []
        for start in range(0, rows, step):
            r = slice(start, start + step)
            features, _ = self.decoder.run(inputs[r], self.decoder.initial_state(r), r)
            out.append(-token_nll(self.head(features), targets[r]).sum(-1))
        return torch.cat(out).reshape(self.batch_shape)

    @torch.no_grad()
    def sample(self, sample_shape=(), greedy: bool = False) -> torch.Tensor:
        """Ancestral samples (or greedy decodes), ids ``(*batch_shape, T)`` from ``<bos>``, padded."""
        if len(sample_shape) > 0:
            raise ValueError("TokenSequence.sample draws one sequence per latent code; pass more codes instead")
        rows = self.decoder.z.shape[0]
        device = self.decoder.z.device
        token = torch.full((rows, 1), BOS, dtype=torch.long, device=device)
        state, done = self.decoder.initial_state(), torch.zeros(rows, dtype=torch.bool, device=device)
        out = [token]
        for _ in range(self.max_length):
            features, state = self.decoder.run(token, state)
            logits = self.head(features[:, -1])
            choice = logits.argmax(-1) if greedy else torch.multinomial(F.softmax(logits, -1), 1).squeeze(-1)
            token = (choice + NUM_INPUT_ONLY).masked_fill(done, PAD).unsqueeze(-1)
            out.append(token)
            done |= token.squeeze(-1) == EOS
            if bool(done.all()):
                break
        return torch.cat(out, dim=1).reshape(*self.batch_shape, -1)

    @property
    def mode(self) -> torch.Tensor:
        """Greedy decoding (the argmax at every step; an approximation of the mode)."""
        return self.sample(greedy=True)


class TokenSequenceLikelihood(Likelihood):
    """Softmax over the ``vocab_size`` outputs (end token, unknown token, words) at every step."""

    data_types = ("token_sequence",)
    # Batches are bucketed by sentence length: a compiled evaluation pass would recompile for each
    # length (torch gives up after 8), for no measured gain over the eager one (PTB, S = 500).
    fixed_shape = False

    def __init__(
        self,
        in_features: int,
        vocab_size: int,
        word_dropout: float = 0.0,
        max_length: int = 100,
        chunk_elements: int = 1 << 24,
    ):
        super().__init__()
        self.head = Linear(in_features, vocab_size)
        self.word_dropout, self.max_length, self.chunk_elements = word_dropout, max_length, chunk_elements

    def forward(self, decoder: LatentConditionedLSTM) -> TokenSequence:
        word_dropout = self.word_dropout if self.training else 0.0
        return TokenSequence(decoder, self.head, word_dropout, self.max_length, self.chunk_elements)


class BagOfWords(Distribution):
    """Multinomial over word counts without the multinomial coefficient, as NVDM: Σ_w x_w log p_w."""

    arg_constraints = {"logits": constraints.real_vector}
    support = constraints.nonnegative

    def __init__(self, logits: torch.Tensor):
        self.logits = logits  # (..., V)
        super().__init__(logits.shape[:-1], logits.shape[-1:], validate_args=False)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        # Σ_w x_w (l_w − logsumexp l) without materialising a second (…, V) tensor.
        return (x * self.logits).sum(-1) - x.sum(-1) * logsumexp(self.logits, -1)

    @property
    def mean(self) -> torch.Tensor:
        """Word probabilities (the expected counts of a one-word document)."""
        return F.softmax(self.logits, -1)


class BagOfWordsLikelihood(Likelihood):
    data_types = ("word_counts",)

    def __init__(self, in_features: int, vocab_size: int):
        super().__init__()
        self.head = Linear(in_features, vocab_size)

    def forward(self, features: torch.Tensor) -> BagOfWords:
        return BagOfWords(self.head(features))
