"""Same-budget cross-check, pythae half: train pythae 0.1.2's VAE, VAMP and SVAE on the protocol's
networks and data, score each with its own ``get_nll``, and save the weights for vae_lab to score.

Runs inside ``.venv-bench`` (``bench/peer_env.sh``) and never imports vae_lab; the whole check is
``bench/crosscheck.sh``. Per model and seed: pythae's ``BaseTrainer`` for ``--epochs`` epochs
(Adam, the protocol's batch and learning rate, validation on the 10k validation split, no KL
warm-up, the trainer's best-validation model kept), then ``get_nll`` on the first
``--test-points`` test images with ``--samples`` importance samples. Data: statically binarised
MNIST (Larochelle's 50k/10k/10k), the one binarisation both libraries can train on unchanged.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import os
import tempfile
import time

import torch
from matmul_rate import cpu_model
from peer_nets import PROTOCOLS
from peer_pythae import build_model, load_static_mnist
from pythae.data.datasets import BaseDataset
from pythae.trainers import BaseTrainer, BaseTrainerConfig


def train(kind: str, seed: int, data: dict[str, torch.Tensor], epochs: int, workdir: str):
    model = build_model(kind, seed)
    if kind == "vamp":  # vae_lab's pseudo-input init N(0.05, 0.01²) (Tomczak & Welling's), not torch's default
        layer = model.pseudo_inputs[0]
        with torch.no_grad():
            layer.weight.normal_(0.05, 0.01)
            layer.bias.zero_()
    protocol = PROTOCOLS[kind]
    config = BaseTrainerConfig(
        output_dir=workdir,
        per_device_train_batch_size=protocol["batch"],
        per_device_eval_batch_size=protocol["batch"],
        num_epochs=epochs,
        learning_rate=protocol["lr"],
        optimizer_cls="Adam",
        no_cuda=True,
        seed=seed,
        steps_saving=None,
        steps_predict=None,
    )
    train_set = BaseDataset(data["train"], torch.zeros(len(data["train"])))
    valid_set = BaseDataset(data["valid"], torch.zeros(len(data["valid"])))
    trainer = BaseTrainer(model, train_set, valid_set, training_config=config)
    trainer.train()
    return trainer._best_model  # the epoch with the lowest validation loss, as vae_lab's eval_ckpt=best


def saved_weights(kind: str, model) -> dict[str, dict[str, torch.Tensor]]:
    weights = {"encoder": model.encoder.net.state_dict(), "decoder": model.decoder.net.state_dict()}
    if kind == "vamp":
        weights["pseudo_inputs"] = model.pseudo_inputs[0].state_dict()
    return weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["vae", "vamp", "svae"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--samples", type=int, default=500, help="importance samples per test point")
    parser.add_argument("--test-points", type=int, default=2000)
    parser.add_argument("--data-root", default=os.environ.get("VAE_LAB_DATA", "/work/shared/data"))
    parser.add_argument("--out-dir", default="bench/out/crosscheck")
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    if unknown := set(args.models) - set(PROTOCOLS):
        parser.error(f"unknown model(s) {sorted(unknown)}: expected any of {sorted(PROTOCOLS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    for name in list(logging.root.manager.loggerDict):  # pythae logs every epoch at INFO
        if name.startswith("pythae"):
            logging.getLogger(name).setLevel(logging.WARNING)
    os.makedirs(args.out_dir, exist_ok=True)
    data = load_static_mnist(args.data_root)
    test = data["test"][: args.test_points]
    for kind in args.models:
        for seed in args.seeds:
            stem = os.path.join(args.out_dir, f"pythae_{kind}_seed{seed}")
            if os.path.exists(stem + ".json"):
                print(f"{stem}.json exists: skipped (delete it to rerun)")
                continue
            start = time.perf_counter()
            with tempfile.TemporaryDirectory() as workdir:
                model = train(kind, seed, data, args.epochs, workdir)
            trained = time.perf_counter()
            model.eval()
            torch.manual_seed(seed)
            with torch.no_grad():
                mean_log_p = float(model.get_nll(test, n_samples=args.samples, batch_size=100))
            scored = time.perf_counter()
            torch.save(saved_weights(kind, model), stem + ".pt")
            result = {
                "library": f"pythae {importlib.metadata.version('pythae')}",
                "model": kind,
                "seed": seed,
                "epochs": args.epochs,
                "protocol": PROTOCOLS[kind],
                "data": "static binarised MNIST, 50k train / 10k valid; first test points",
                "test_points": len(test),
                "samples": args.samples,
                # get_nll returns the mean log-likelihood despite its name.
                "nll_by_pythae_get_nll": -mean_log_p,
                "train_s": trained - start,
                "score_s": scored - trained,
                "threads": torch.get_num_threads(),
                "cpu": cpu_model(),
            }
            with open(stem + ".json", "w") as f:
                json.dump(result, f, indent=2)
            print(f"{kind} seed {seed}: NLL {-mean_log_p:.2f} by get_nll, train {trained - start:.0f} s")


if __name__ == "__main__":
    main()
