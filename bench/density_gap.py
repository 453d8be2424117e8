"""The density-gap paper's costs: the DG training step against the ELBO step, and the hole metrics
against a straightforward re-implementation of the paper's loop.

Standalone: ``python bench/density_gap.py --out bench/out/density_gap.json``.

(a) Predicted tokens/s of ``VAEModule.training_loss`` with the ELBO and with the density gap
    (|b| 32, 32 samples per posterior), the experiment=dg_ptb model (LSTM 256/256, latent 32,
    batch 32) on length-bucketed PTB batches; blocks of SGD steps alternate between the two.
(b) The hole metrics on the PTB test set's posteriors (the model of (a) after its DG steps, or a
    checkpoint given with --checkpoint): ``LatentHoles`` against the paper's way — 1000 rounds of
    128 prior samples, per-dimension densities (S × N × L) in probability space, averaged over
    the posteriors — on the same 128 000 prior samples, same process: seconds and the values.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

from bench.step_rates import save_result
from vae_lab.data.text import BucketBatches, count_predicted_tokens, load_text_corpus
from vae_lab.latents.gaussian import GaussianLatent
from vae_lab.likelihoods.text import TokenSequenceLikelihood
from vae_lab.metrics.holes import LatentHoles
from vae_lab.model import VAEModule
from vae_lab.nets.text import LSTMDecoder, LSTMEncoder
from vae_lab.objectives import ELBO, DensityGapELBO
from vae_lab.rng import seeded_stream

VOCAB, EMB, HIDDEN, LATENT, BATCH = 10000, 256, 256, 32, 32


def dg_ptb_model(objective) -> VAEModule:
    return VAEModule(
        encoder=LSTMEncoder(VOCAB, EMB, HIDDEN),
        latent=GaussianLatent(HIDDEN, LATENT),
        decoder=LSTMDecoder(LATENT, VOCAB, EMB, HIDDEN),
        likelihood=TokenSequenceLikelihood(HIDDEN, VOCAB),
        objective=objective,
        optimizer=None,
        data_dim=VOCAB,
        hole_samples=0,
    )


def time_block(model: VAEModule, batches, steps: int) -> float:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    tokens, start = 0, time.perf_counter()
    for _ in range(steps):
        (x,), _ = next(batches)
        optimizer.zero_grad(set_to_none=True)
        model.training_loss(x, 1.0)[0].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        tokens += int(count_predicted_tokens(x).sum())
    return tokens / (time.perf_counter() - start)


def paper_hole_loop(loc: torch.Tensor, scale: torch.Tensor, z_prior: torch.Tensor, rounds_of: int = 128) -> dict:
    """The reference way: per round, (128, N, L) Gaussian densities in probability space, the
    aggregate's per-dimension density their mean over posteriors, the joint one the mean of
    their products over dimensions."""
    log_p_dims, log_q_dims, log_q_joint = [], [], []
    for z in z_prior.split(rounds_of):
        density = torch.exp(-0.5 * ((z.unsqueeze(1) - loc) / scale) ** 2) / (math.sqrt(2 * math.pi) * scale)
        log_q_dims.append(density.mean(1).log())
        log_q_joint.append(density.prod(-1).mean(1).log())
        log_p_dims.append(-0.5 * z**2 - 0.5 * math.log(2 * math.pi))
    log_p_dims = torch.cat(log_p_dims)
    per_dim = (log_p_dims - torch.cat(log_q_dims)).mean(0)
    joint = (log_p_dims.sum(-1) - torch.cat(log_q_joint)).mean()
    return {"kl_prior_to_aggregate": float(joint), "kl_prior_to_aggregate_per_dim": per_dim.tolist()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--steps", type=int, default=20, help="SGD steps per timed block")
    parser.add_argument("--blocks", type=int, default=3, help="alternating blocks per objective")
    parser.add_argument("--prior-samples", type=int, default=128_000)
    parser.add_argument(
        "--checkpoint", type=Path, help="a trained dg_ptb checkpoint for (b) (default: the model of (a))"
    )
    args = parser.parse_args()

    torch.manual_seed(0)
    corpus = load_text_corpus(folder="ptb", pattern="ptb.{split}.txt", vocab_size=VOCAB)
    batches = iter(BucketBatches(corpus.train, BATCH, shuffle=True, seed=0))
    models = {"elbo": dg_ptb_model(ELBO()).train(), "density_gap": dg_ptb_model(DensityGapELBO(32, 32)).train()}
    for model in models.values():
        time_block(model, batches, 3)  # warm-up
    rates = {name: [] for name in models}
    for _ in range(args.blocks):
        for name, model in models.items():
            rates[name].append(time_block(model, batches, args.steps))
    best = {name: max(r) for name, r in rates.items()}

    if args.checkpoint:
        from vae_lab.restore import load

        model = load(args.checkpoint)
        source = str(args.checkpoint)
    else:
        model, source = models["density_gap"], f"the DG model of (a) after {args.blocks * args.steps + 3} steps"
    model.eval()
    test_batches = BucketBatches(corpus.test, 100, shuffle=False, seed=0)
    holes = LatentHoles(prior_samples=args.prior_samples, seed=0)
    with torch.no_grad():
        for x, batch_index in test_batches:  # evaluation batches are single tensors
            holes.update(model=model, x=x, batch_index=batch_index)
        features = torch.cat(holes.features)
        q = model.latent.posterior(features)
        start = time.perf_counter()
        holes.compute()
        ours_cold_s = time.perf_counter() - start  # includes compiling the per-dimension kernel
        holes._computed = None  # torchmetrics caches compute(): time a second, warm call
        start = time.perf_counter()
        ours = holes.compute()
        ours_s = time.perf_counter() - start
        with seeded_stream(0, features.device):  # the prior samples LatentHoles drew
            z_prior = model.prior().sample((args.prior_samples,))
        start = time.perf_counter()
        reference = paper_hole_loop(q.base_dist.loc, q.base_dist.scale, z_prior)
        reference_s = time.perf_counter() - start
    ours_dims = ours["kl_prior_to_aggregate_per_dim"]
    ref_dims = torch.tensor(reference["kl_prior_to_aggregate_per_dim"])
    result = {
        "training_tokens_per_s": best,
        "all_blocks": rates,
        "ratio_dg_to_elbo": best["density_gap"] / best["elbo"],
        "target_ratio": 0.85,
        "holes": {
            "posteriors": int(features.shape[0]),
            "latent": LATENT,
            "prior_samples": args.prior_samples,
            "model": source,
            "ours_s": ours_s,
            "ours_first_call_s": ours_cold_s,
            "paper_loop_s": reference_s,
            "speedup": reference_s / ours_s,
            "target_speedup": 10,
            "ours_joint_kl": float(ours["kl_prior_to_aggregate"]),
            "paper_loop_joint_kl": reference["kl_prior_to_aggregate"],
            "joint_relative_difference": abs(
                float(ours["kl_prior_to_aggregate"]) / reference["kl_prior_to_aggregate"] - 1
            ),
            "per_dim_max_relative_difference": float(((ours_dims - ref_dims).abs() / ref_dims.abs()).max()),
            "per_dim_max_absolute_difference": float((ours_dims - ref_dims).abs().max()),
            "per_dim_smallest_kl": float(ref_dims.abs().min()),
            "cu_0.03": float(ours["cu_0.03"]),
        },
        "config": {"vocab": VOCAB, "embedding": EMB, "hidden": HIDDEN, "latent": LATENT, "batch": BATCH},
        "threads": torch.get_num_threads(),
    }
    save_result(result, args.out)


if __name__ == "__main__":
    main()
