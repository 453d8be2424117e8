"""PTB training throughput (predicted tokens/s) of the LSTM VAE vs a bare torch.nn.LSTM language model.

Standalone: ``python bench/text_lstm.py --out bench/out/text_lstm.json``. Both train on the same
length-bucketed PTB batches (batch 20) with the same sizes (embedding 100, LSTM 400, 10k-way
softmax), SGD and gradient clipping 0.25. The VAE step is the model's own ELBO step
(``VAEModule.training_loss`` with the ELBO: LSTM encoder, Gaussian latent 50, z-conditioned LSTM
decoder); the bare loop is embedding → nn.LSTM → linear → cross-entropy, the practical floor.
Both output layers multiply on the library ``linear_backend=auto`` picks (vae_lab.linear).
Blocks of steps alternate between the two on the same batches (PTB's sentence lengths vary, and
tokens/s with them), and which goes first alternates too, so a shared machine's load and the
batches' lengths hit both alike; the ratio is the median of the per-block ratios, the rates the
medians of the blocks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from vae_lab.data.text import NUM_INPUT_ONLY, PAD, BucketBatches, count_predicted_tokens, load_text_corpus
from vae_lab.latents.gaussian import GaussianLatent
from vae_lab.likelihoods.text import TokenSequenceLikelihood
from vae_lab.linear import Linear, set_linear_backend
from vae_lab.model import VAEModule
from vae_lab.nets.text import LSTMDecoder, LSTMEncoder
from vae_lab.objectives import ELBO

VOCAB, EMB, HIDDEN, LATENT = 10000, 100, 400, 50


class BareLSTMLanguageModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB + NUM_INPUT_ONLY, EMB, padding_idx=PAD)
        self.lstm = nn.LSTM(EMB, HIDDEN, batch_first=True)
        self.head = Linear(HIDDEN, VOCAB)
        self.dropout = nn.Dropout(0.5)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.dropout(self.embed(x[:, :-1])))
        logits = self.head(self.dropout(out))
        targets = (x[:, 1:] - NUM_INPUT_ONLY).masked_fill(x[:, 1:] == PAD, -100)
        per_token = F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1), reduction="none")
        return per_token.reshape(targets.shape).sum(-1).mean()


def lstm_vae() -> VAEModule:
    return VAEModule(
        encoder=LSTMEncoder(VOCAB, EMB, HIDDEN),
        latent=GaussianLatent(HIDDEN, LATENT),
        decoder=LSTMDecoder(LATENT, VOCAB, EMB, HIDDEN),
        likelihood=TokenSequenceLikelihood(HIDDEN, VOCAB),
        objective=ELBO(),
        optimizer=None,
        data_dim=VOCAB,
    )


def vae_loss(model: VAEModule):
    def loss(x):
        return model.training_loss(x, 1.0)[0]

    return loss


def time_block(loss_fn, params, block: list[torch.Tensor]) -> float:
    """Seconds for one SGD step on each batch of ``block``."""
    optimizer = torch.optim.SGD(params, lr=1.0)
    start = time.perf_counter()
    for x in block:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(x).backward()
        torch.nn.utils.clip_grad_norm_(params, 0.25)
        optimizer.step()
    return time.perf_counter() - start


def draw_block(batches, steps: int) -> list[torch.Tensor]:
    return [next(batches)[0][0] for _ in range(steps)]  # batches come in groups (of one: steps_per_call=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=40, help="SGD steps per timed block")
    parser.add_argument("--blocks", type=int, default=7, help="alternating blocks per model")
    args = parser.parse_args()
    backend = set_linear_backend("auto")  # as vae_lab.train does

    torch.manual_seed(0)
    train = load_text_corpus(folder="ptb", pattern="ptb.{split}.txt", vocab_size=VOCAB).train
    batches = iter(BucketBatches(train, 20, shuffle=True, seed=0))
    vae, bare = lstm_vae().train(), BareLSTMLanguageModel().train()
    runs = {
        "lstm_vae": (vae_loss(vae), list(vae.parameters())),
        "bare_lstm_lm": (bare.loss, list(bare.parameters())),
    }
    warmup = draw_block(batches, 5)
    for loss_fn, params in runs.values():  # warm-up: allocator, kernels
        time_block(loss_fn, params, warmup)
    rates, ratios = {name: [] for name in runs}, []
    for _ in range(args.blocks):
        block = draw_block(batches, args.steps)
        tokens = sum(int(count_predicted_tokens(x).sum()) for x in block)
        order = list(runs) if len(ratios) % 2 == 0 else list(reversed(runs))  # who goes first alternates
        seconds = {name: time_block(*runs[name], block) for name in order}
        for name in runs:
            rates[name].append(tokens / seconds[name])
        ratios.append(seconds["bare_lstm_lm"] / seconds["lstm_vae"])
    median = {name: statistics.median(r) for name, r in rates.items()}
    result = {
        "tokens_per_s": median,
        "all_blocks": rates,
        "ratio_vae_to_bare": statistics.median(ratios),
        "ratio_by_block": ratios,
        "target_ratio": 0.8,
        "config": {"vocab": VOCAB, "embedding": EMB, "hidden": HIDDEN, "latent": LATENT, "batch": 20},
        "threads": torch.get_num_threads(),
        "linear_backend": backend,
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
