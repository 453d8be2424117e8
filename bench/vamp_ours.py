"""Throughput of vae_lab's VampPrior VAE: training samples/s through the Lightning loop and test-NLL points/s.

The counterpart of ``bench/peer_pythae.py`` (same networks, data and batch size):

    python bench/vamp_ours.py --out bench/out/vamp_ours.json

Model: ``data=mnist_static prior=vamp latent=40`` (gated MLP 2×300, K = 500 pseudo-inputs, Bernoulli
decoder, batch 100, AdamNormGrad), composed from the real Hydra config. Training is timed inside
``Trainer.fit`` (validation, checkpoints and loggers off: the step as a user's run executes it) for
each ``--precision`` (``32-true``, ``bf16-mixed``); evaluation times ``VAEModule.log_likelihood``
(importance sampling with the default chunking and `eval.compile=auto`) in fp32 under inference
mode on test points, as the final test (Lightning's test loop) runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import open_dict
from step_rates import rates  # sibling script (bench/ is on sys.path when run as a script)

from vae_lab.linear import set_linear_backend

REPO = Path(__file__).resolve().parents[1]


def compose_model_config(overrides: list[str]):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["data=mnist_static", "prior=vamp", "latent=40", *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = "unused"  # nothing is written
    return cfg


class StepClock(L.Callback):
    """Time at the end of every training step."""

    def __init__(self):
        self.ends: list[float] = []

    def on_train_batch_end(self, *args, **kwargs):
        self.ends.append(time.perf_counter())


def bench_training(cfg, precision: str, warmup: int, steps: int) -> tuple[dict, L.LightningModule]:
    """The training rate, and the model as trained (the evaluation times it)."""
    torch.manual_seed(0)
    datamodule, model = instantiate(cfg.data.module), instantiate(cfg.model)
    clock = StepClock()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        precision=precision,
        max_steps=warmup + steps,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[clock],
    )
    trainer.fit(model, datamodule=datamodule)
    return {**rates(clock.ends[warmup - 1 :], cfg.data.module.batch_size), "precision": precision}, model


def bench_evaluation(cfg, model, points: int, num_samples: int) -> dict:
    """Test-NLL points/s of ``model``. Its weights must be trained: at initialisation the pseudo-inputs'
    posteriors overlap, while after training most of a sample's K log-densities lie hundreds of nats
    below the largest, the regime whose log-sum-exp the real test meets (vae_lab/distributions/logsumexp.py)."""
    torch.manual_seed(0)
    datamodule = instantiate(cfg.data.module)
    datamodule.setup("test")
    model.eval()
    x = datamodule.splits.test[:points]
    batch_size = cfg.data.module.eval_batch_size
    with torch.inference_mode():  # as the test loop runs it (Lightning's default)
        # Warm-up at the timed S and batch: it compiles the decoder and prior pass (eval.compile=auto, S >= 500).
        model.log_likelihood(x[:batch_size], model.posterior(x[:batch_size]), num_samples)
        start = time.perf_counter()
        log_p = [model.log_likelihood(b, model.posterior(b), num_samples) for b in x.split(batch_size)]
        seconds = time.perf_counter() - start
    return {
        "points": points,
        "num_samples": num_samples,
        "chunk": cfg.eval.iw_chunk_size,
        "seconds": seconds,
        "points_per_s": points / seconds,
        "mean_log_p": float(torch.cat(log_p).mean()),  # briefly trained weights: a sanity value only
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the results as JSON to this file")
    parser.add_argument("--precision", nargs="+", default=["32-true", "bf16-mixed"])
    parser.add_argument("--warmup", type=int, default=20, help="steps excluded from the rates")
    parser.add_argument("--steps", type=int, default=300, help="timed training steps")
    parser.add_argument("--nll-points", type=int, default=100)
    parser.add_argument("--nll-samples", type=int, nargs="+", default=[500])
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. prior.components=100")
    args = parser.parse_args()
    os.environ.setdefault("VAE_LAB_DATA", str(REPO.parent / "shared" / "data"))
    torch.set_float32_matmul_precision("high")
    cfg = compose_model_config(args.overrides)
    backend = set_linear_backend(cfg.linear_backend)  # as vae_lab.train does

    result = {
        "library": "vae_lab",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "model": "data=mnist_static prior=vamp latent=40 " + " ".join(args.overrides),
        "components": cfg.prior.components,
        "linear_backend": backend,
        "batch": cfg.data.module.batch_size,
        "loadavg_start": os.getloadavg(),
    }
    trained = [bench_training(cfg, p, args.warmup, args.steps) for p in args.precision]
    result["training"] = [rate for rate, _ in trained]
    model = trained[0][1]
    result["evaluation"] = [bench_evaluation(cfg, model, args.nll_points, s) for s in args.nll_samples]
    steps = args.warmup + args.steps
    result["note"] = f"evaluation uses the weights after the {args.precision[0]} training run's {steps} steps"
    result["loadavg_end"] = os.getloadavg()

    print(f"\nvae_lab VampPrior: torch {torch.__version__}, {result['threads']} threads")
    load_start, load_end = result["loadavg_start"][0], result["loadavg_end"][0]
    print(f"load average (1 min): {load_start:.1f} at start, {load_end:.1f} at end")
    for t in result["training"]:
        print(
            f"train {t['precision']:>10s}: {t['samples_per_s']:8.1f} samples/s "
            f"(best window {t['best_window_samples_per_s']:.1f})"
        )
    for e in result["evaluation"]:
        print(f"test NLL S={e['num_samples']:>5d}: {e['points_per_s']:8.2f} points/s")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
