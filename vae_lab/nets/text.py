"""LSTM encoder and decoder for sentences (Bowman et al. 2016; Xu & Durrett 2018).

Inputs are padded id tensors ``x (B, T)`` from :mod:`vae_lab.data.text` (``PAD = 0``). The
decoder does not run on its own: ``decoder(z)`` returns a :class:`LatentConditionedLSTM`, the
z-dependent part (initial state, per-step z input), and the likelihood's sequence distribution
runs it by teacher forcing or sampling. That keeps the model's one contract
``decode(z) = likelihood(decoder(z))`` with ``log_prob(x)`` per example.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from vae_lab.data.text import NUM_INPUT_ONLY, PAD
from vae_lab.linear import Linear
from vae_lab.nets.dropout import GlobalBatchDropout

State = tuple[torch.Tensor, torch.Tensor]  # (h, c), each (1, N, H)


def _check_token_ids(x: torch.Tensor, who: str) -> None:
    if x.is_floating_point():
        raise TypeError(
            f"{who} reads token ids (an integer tensor (B, T)), got a float tensor of shape "
            f"{tuple(x.shape)}. prior=vamp has no meaning for token sequences: its pseudo-inputs are "
            f"points of a continuous data space, and sentences are discrete. Use prior=gauss or prior=vmf."
        )


class LSTMEncoder(nn.Module):
    """Embedding → (bi)LSTM over the real tokens → final (h, c) → linear features of size ``hidden``."""

    def __init__(
        self,
        vocab_size: int,
        embedding: int = 100,
        hidden: int = 400,
        dropout: float = 0.5,
        bidirectional: bool = False,
    ):
        super().__init__()
        self.embed = nn.Embedding(vocab_size + NUM_INPUT_ONLY, embedding, padding_idx=PAD)
        self.lstm = nn.LSTM(embedding, hidden, batch_first=True, bidirectional=bidirectional)
        self.dropout = GlobalBatchDropout(dropout)
        # Xu & Durrett: the final h and c of every direction, concatenated, then one linear map.
        self.to_features = Linear(2 * (1 + bidirectional) * hidden, hidden)
        self.hidden = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_token_ids(x, "LSTMEncoder")
        lead, x = x.shape[:-1], x.reshape(-1, x.shape[-1])
        # Packing makes the final state that of the last real token (both directions).
        lengths = (x != PAD).sum(-1).cpu()
        packed = pack_padded_sequence(self.dropout(self.embed(x)), lengths, batch_first=True, enforce_sorted=False)
        _, (h, c) = self.lstm(packed)  # (directions, N, H) each
        final = torch.cat([*h, *c], dim=-1)
        return self.to_features(final).reshape(*lead, -1)


@dataclass
class LatentConditionedLSTM:
    """The decoder LSTM bound to latent codes ``z`` flattened to ``N = prod(batch_shape)`` rows."""

    net: LSTMDecoder
    z: torch.Tensor  # (N, L)
    batch_shape: torch.Size

    def initial_state(self, rows: slice = slice(None)) -> State:
        h, c = self.net.z_to_state(self.z[rows]).chunk(2, dim=-1)
        return h.unsqueeze(0).contiguous(), c.unsqueeze(0).contiguous()

    def run(self, inputs: torch.Tensor, state: State, rows: slice = slice(None)) -> tuple[torch.Tensor, State]:
        """Decoder features (n, T, H) for input ids (n, T) of ``rows``, continuing from ``state``."""
        net = self.net
        emb = net.dropout(net.embed(inputs))
        if net.feed_z:  # z concatenated to every input (Xu & Durrett's input_z, He et al.)
            emb = torch.cat([emb, self.z[rows, None, :].expand(-1, inputs.shape[1], -1)], dim=-1)
        out, state = net.lstm(emb, state)
        out = net.dropout(out)
        if net.skip_z:  # skip-VAE: z also enters the output projection
            out = torch.cat([out, self.z[rows, None, :].expand(-1, out.shape[1], -1)], dim=-1)
        return out, state


class LSTMDecoder(nn.Module):
    """z → initial (h, c) (Xu & Durrett: linear maps of z); LSTM over [embedding; z] per step.

    ``skip_z`` (skip-VAE, Dieng et al. 2019, as the density-gap paper's baseline): the features
    handed to the softmax head are [LSTM output; z], so the head takes ``hidden + latent_dim``.
    """

    def __init__(
        self,
        latent_dim: int,
        vocab_size: int,
        embedding: int = 100,
        hidden: int = 400,
        dropout: float = 0.5,
        feed_z: bool = True,
        skip_z: bool = False,
    ):
        super().__init__()
        self.embed = nn.Embedding(vocab_size + NUM_INPUT_ONLY, embedding, padding_idx=PAD)
        self.z_to_state = Linear(latent_dim, 2 * hidden)
        self.lstm = nn.LSTM(embedding + latent_dim * feed_z, hidden, batch_first=True)
        self.dropout = GlobalBatchDropout(dropout)
        self.feed_z, self.skip_z = feed_z, skip_z
        self.hidden = hidden
        self.out_features = hidden + latent_dim * skip_z

    def forward(self, z: torch.Tensor) -> LatentConditionedLSTM:
        return LatentConditionedLSTM(self, z.reshape(-1, z.shape[-1]), z.shape[:-1])
