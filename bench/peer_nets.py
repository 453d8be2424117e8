"""The peer library's networks in plain torch, shaped like vae_lab's (no pythae import).

``bench/peer_pythae.py`` and ``bench/crosscheck_pythae.py`` wrap them in pythae's encoder and
decoder classes; ``bench/crosscheck_ours.py`` rebuilds them from pythae's saved weights to score
pythae's trained models with vae_lab's estimator. Encoders return two tensors (the mean or
direction, then log σ² or the concentration's pre-activation); decoders return Bernoulli logits.
"""

from __future__ import annotations

import torch
from torch import nn

INPUT_DIM = 784


def _he_init(linear: nn.Linear) -> None:
    """vae_lab's hidden-layer init: He-normal weights, zero biases."""
    nn.init.kaiming_normal_(linear.weight)
    nn.init.zeros_(linear.bias)


class Gated(nn.Module):
    """h = Linear(x) * sigmoid(Linear(x)) (Tomczak & Welling's gated layer)."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.h = nn.Linear(n_in, n_out)
        self.g = nn.Linear(n_in, n_out)
        _he_init(self.h)
        _he_init(self.g)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.h(x) * torch.sigmoid(self.g(x))


def _body(widths: list[int], gated: bool) -> nn.Sequential:
    """Hidden layers initialised as vae_lab's (He-normal weights, zero biases); heads keep torch's."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip(widths[:-1], widths[1:], strict=True):
        layers += [Gated(n_in, n_out)] if gated else [nn.Linear(n_in, n_out), nn.ReLU()]
    for module in layers:
        if isinstance(module, nn.Linear):  # the ReLU branch (Gated initialises its own)
            _he_init(module)
    return nn.Sequential(*layers)


class EncoderNet(nn.Module):
    """x -> body -> (head_a(h), head_b(h)). ``second="log_var"``: log σ² bounded to [−6, 2] as
    vae_lab's Gaussian head; ``second="concentration"``: one pre-softplus κ per example."""

    def __init__(self, hidden: list[int], latent: int, gated: bool, second: str = "log_var"):
        super().__init__()
        self.body = _body([INPUT_DIM, *hidden], gated)
        self.mu = nn.Linear(hidden[-1], latent)
        if second == "log_var":
            self.second = nn.Sequential(nn.Linear(hidden[-1], latent), nn.Hardtanh(-6.0, 2.0))
        elif second == "concentration":
            self.second = nn.Linear(hidden[-1], 1)
        else:
            raise ValueError(f"second={second!r}: expected 'log_var' or 'concentration'")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x.reshape(x.shape[0], -1))
        return self.mu(h), self.second(h)


class DecoderNet(nn.Module):
    """z -> body -> Bernoulli logits (784)."""

    def __init__(self, latent: int, hidden: list[int], gated: bool):
        super().__init__()
        self.body = _body([latent, *hidden], gated)
        self.out = nn.Linear(hidden[-1], INPUT_DIM)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(z))


# The two protocols of the cross-check (and of vae_lab's experiments): the VampPrior paper's gated
# MLP 2 x 300 at latent 40, batch 100, Adam 5e-4; the hyperspherical VAE's ReLU MLP 784-256-128
# and its mirror at ambient dimension 10, batch 64, Adam 1e-3.
PROTOCOLS = {
    "vae": {"hidden": [300, 300], "latent": 40, "gated": True, "batch": 100, "lr": 5e-4},
    "vamp": {"hidden": [300, 300], "latent": 40, "gated": True, "batch": 100, "lr": 5e-4, "components": 500},
    "svae": {"hidden": [256, 128], "latent": 10, "gated": False, "batch": 64, "lr": 1e-3},
}


def build_nets(kind: str) -> tuple[EncoderNet, DecoderNet]:
    p = PROTOCOLS[kind]
    second = "concentration" if kind == "svae" else "log_var"
    encoder = EncoderNet(p["hidden"], p["latent"], p["gated"], second)
    decoder = DecoderNet(p["latent"], list(reversed(p["hidden"])), p["gated"])
    return encoder, decoder
