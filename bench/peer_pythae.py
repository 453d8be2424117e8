"""Throughput of the peer library pythae 0.1.2 on the same models, data and batch size as vae_lab.

Runs inside the benchmark environment made by ``bench/peer_env.sh`` and never imports vae_lab:

    .venv-bench/bin/python bench/peer_pythae.py vae vamp nll --out bench/out/peer_pythae.json

Cases (default: all three):
  vae   training samples/s of ``pythae.models.VAE`` (latent 40, gated MLP 2x300, Bernoulli decoder,
        batch 100, Adam lr 5e-4) on MNIST binarised once with a fixed seed;
  vamp  the same for ``pythae.models.VAMP`` (K = 500 pseudo-inputs) on static binarised MNIST;
  nll   evaluation points/s of pythae's ``get_nll`` (importance-sampled NLL) for both models
        (``--nll-models``: only some).

Each training case is measured twice: through pythae's own ``BaseTrainer`` for one epoch (what a
user gets: per-item Dataset + DataLoader, tqdm bar, per-step ``loss.item()``; no checkpoints, no
prediction step, 10k validation set), and as a bare loop calling the model's ``forward`` and an
Adam step on batches sliced from a resident tensor (pythae's model cost alone).
"""

from __future__ import annotations

import argparse
import gzip
import importlib.metadata
import json
import logging
import os
import tempfile
import time

import numpy as np
import torch
from matmul_rate import cpu_model  # sibling scripts (bench/ is on sys.path when run as a script)
from peer_nets import INPUT_DIM, PROTOCOLS, build_nets
from pythae.data.datasets import BaseDataset
from pythae.models import SVAE, VAE, VAMP, SVAEConfig, VAEConfig, VAMPConfig
from pythae.models.base.base_utils import ModelOutput
from pythae.models.nn import BaseDecoder, BaseEncoder
from pythae.trainers import BaseTrainer, BaseTrainerConfig
from pythae.trainers.training_callbacks import TrainingCallback
from step_rates import rates
from torch import nn

HIDDEN = PROTOCOLS["vae"]["hidden"][0]
LATENT = PROTOCOLS["vae"]["latent"]
BATCH = PROTOCOLS["vae"]["batch"]
LR = PROTOCOLS["vae"]["lr"]
COMPONENTS = PROTOCOLS["vamp"]["components"]


# --- networks: identical in shape to vae_lab's (bench/peer_nets.py), in pythae's wrappers -------------


class PythaeEncoder(BaseEncoder):
    """A peer_nets encoder as pythae wants it: ``embedding`` plus ``log_covariance`` (Gaussian)
    or ``log_concentration`` (SVAE; pythae applies softplus to it)."""

    def __init__(self, net: nn.Module, second: str = "log_covariance"):
        super().__init__()
        self.net, self.second = net, second

    def forward(self, x: torch.Tensor) -> ModelOutput:
        first, second = self.net(x)
        return ModelOutput(embedding=first, **{self.second: second})


class PythaeDecoder(BaseDecoder):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, z: torch.Tensor) -> ModelOutput:
        # pythae's "bce" loss takes probabilities, so the Bernoulli logits go through a sigmoid.
        return ModelOutput(reconstruction=torch.sigmoid(self.net(z)))


def build_model(kind: str, seed: int = 0) -> VAE:
    """pythae's VAE, VAMP or SVAE around the protocol's networks (peer_nets.PROTOCOLS)."""
    torch.manual_seed(seed)
    encoder_net, decoder_net = build_nets(kind)
    protocol = PROTOCOLS[kind]
    common = dict(input_dim=(INPUT_DIM,), latent_dim=protocol["latent"], reconstruction_loss="bce")
    decoder = PythaeDecoder(decoder_net)
    if kind == "vae":
        return VAE(VAEConfig(**common), encoder=PythaeEncoder(encoder_net), decoder=decoder)
    if kind == "svae":
        return SVAE(SVAEConfig(**common), encoder=PythaeEncoder(encoder_net, "log_concentration"), decoder=decoder)
    config = VAMPConfig(**common, number_components=protocol["components"], linear_scheduling_steps=0)
    return VAMP(config, encoder=PythaeEncoder(encoder_net), decoder=decoder)


# --- data: real files, read with numpy only ------------------------------------------------------------


def read_idx_images(path: str) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, n, rows, cols = np.frombuffer(raw[:16], dtype=">u4")
    if magic != 2051:
        raise ValueError(f"{path}: not an idx3 image file (magic {magic})")
    return np.frombuffer(raw[16:], dtype=np.uint8).reshape(n, rows * cols)


def load_mnist_binarised(root: str) -> dict[str, torch.Tensor]:
    """50k/10k split of MNIST train with a fixed seed, each split binarised once with a fixed seed.

    vae_lab re-binarises the training set every batch; pythae's Dataset holds a fixed tensor, so
    the peer gets the cheaper binarise-once variant (its step does strictly less work).
    """
    train = read_idx_images(os.path.join(root, "mnist", "train-images-idx3-ubyte.gz"))
    test = read_idx_images(os.path.join(root, "mnist", "t10k-images-idx3-ubyte.gz"))
    gen = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(train), generator=gen)
    probs = torch.from_numpy(train.astype(np.float32) / 255.0)[perm]
    test_probs = torch.from_numpy(test.astype(np.float32) / 255.0)
    return {
        "train": torch.bernoulli(probs[:50_000], generator=gen),
        "valid": torch.bernoulli(probs[50_000:], generator=gen),
        "test": torch.bernoulli(test_probs, generator=gen),
    }


def load_static_mnist(root: str) -> dict[str, torch.Tensor]:
    """Larochelle's binarised MNIST (50k/10k/10k), MATLAB v5 files."""
    from scipy.io import loadmat

    out = {}
    for split in ("train", "valid", "test"):
        x = loadmat(os.path.join(root, "binarized_mnist", f"binarized_mnist_{split}.mat"))["X"]
        out[split] = torch.from_numpy(np.asarray(x, dtype=np.float32))
    return out


# --- measurements ------------------------------------------------------------------------------------


class StepClock(TrainingCallback):
    """Records the time at the end of every training step inside pythae's own loop."""

    def __init__(self):
        self.ends: list[float] = []

    def on_train_step_end(self, training_config, **kwargs):
        self.ends.append(time.perf_counter())


def bench_trainer(kind: str, data: dict[str, torch.Tensor], warmup: int, n: int, quiet: bool) -> dict:
    model = build_model(kind)
    n = min(n, len(data["train"]))
    train = BaseDataset(data["train"][:n], torch.zeros(n))
    valid = BaseDataset(data["valid"], torch.zeros(len(data["valid"])))
    clock = StepClock()
    with tempfile.TemporaryDirectory() as tmp:
        config = BaseTrainerConfig(
            output_dir=tmp,
            per_device_train_batch_size=BATCH,
            per_device_eval_batch_size=BATCH,
            num_epochs=1,
            learning_rate=LR,
            optimizer_cls="Adam",
            no_cuda=True,
            steps_saving=None,  # no per-epoch checkpoint
            steps_predict=None,  # no per-epoch reconstruction/generation pass
        )
        if quiet:  # pythae's modules set their own loggers to INFO; keep the table readable
            for name in list(logging.root.manager.loggerDict):
                if name.startswith("pythae"):
                    logging.getLogger(name).setLevel(logging.WARNING)
        t0 = time.perf_counter()
        trainer = BaseTrainer(model, train, valid, training_config=config, callbacks=[clock])
        t1 = time.perf_counter()
        trainer.train()
        t2 = time.perf_counter()
    steady = rates(clock.ends[warmup:], BATCH)
    return {
        **steady,
        "warmup_steps": warmup,
        "epoch_samples": n,
        "setup_s": t1 - t0,
        "train_call_s": t2 - t1,
        # One whole epoch as a user sees it: train() includes the 10k validation pass, the
        # best-model deepcopy and saving the final model.
        "epoch_samples_per_s": n / (t2 - t1),
    }


def bench_bare(kind: str, data: dict[str, torch.Tensor], warmup: int, steps: int) -> dict:
    model = build_model(kind)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    x = data["train"]
    gen = torch.Generator().manual_seed(1)
    perm = torch.randperm(len(x), generator=gen)
    ends = []
    for step in range(warmup + steps):
        i = (step * BATCH) % (len(x) - BATCH + 1)
        batch = x[perm[i : i + BATCH]]
        out = model({"data": batch})
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        if step >= warmup - 1:
            ends.append(time.perf_counter())
    return {**rates(ends, BATCH), "warmup_steps": warmup}


def bench_nll(kind: str, x: torch.Tensor, n_samples: int, no_grad: bool) -> dict:
    """Points/s of model.get_nll(x, n_samples) with pythae's default chunk (batch_size=100)."""
    model = build_model(kind)
    model.eval()
    model.get_nll(x[:1], n_samples=min(n_samples, 100))  # warm-up
    torch.manual_seed(0)
    t0 = time.perf_counter()
    if no_grad:
        with torch.no_grad():
            nll = model.get_nll(x, n_samples=n_samples)
    else:
        nll = model.get_nll(x, n_samples=n_samples)
    dt = time.perf_counter() - t0
    # get_nll returns the mean log-likelihood (despite its name); report it for sanity only.
    return {"points": len(x), "seconds": dt, "points_per_s": len(x) / dt, "mean_log_p": float(nll)}


# --- driver ----------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # No argparse `choices` here: Python 3.11 checks a list default against them and rejects it.
    parser.add_argument("cases", nargs="*", help="any of vae, vamp, nll (default: all)")
    parser.add_argument("--data-root", default=os.environ.get("VAE_LAB_DATA", "/work/shared/data"))
    parser.add_argument("--out", help="write the results as JSON to this file")
    parser.add_argument("--warmup", type=int, default=20, help="steps excluded from the rates")
    parser.add_argument("--epoch-samples", type=int, default=50_000, help="training-set size for BaseTrainer")
    parser.add_argument("--steps", type=int, default=400, help="timed steps of the bare loop")
    parser.add_argument("--nll-points", type=int, default=50)
    parser.add_argument(
        "--nll-samples", type=int, nargs="+", default=[500, 5000], help="importance samples S per point"
    )
    parser.add_argument("--nll-models", nargs="+", default=["vae", "vamp"], help="models of the nll case")
    parser.add_argument("--skip-trainer", action="store_true", help="only the bare loop for vae/vamp")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice, all cores)")
    parser.add_argument("--verbose", action="store_true", help="keep pythae's console logging")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cases = list(dict.fromkeys(args.cases)) or ["vae", "vamp", "nll"]
    if unknown := set(cases) - {"vae", "vamp", "nll"}:
        parser.error(f"unknown case(s): {', '.join(sorted(unknown))}")

    result = {
        "library": f"pythae {importlib.metadata.version('pythae')}",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": cpu_model(),
        "batch": BATCH,
        "latent": LATENT,
        "hidden": HIDDEN,
        "components": COMPONENTS,
        "lr": LR,
        # Other processes on this 2-core machine slow torch's threads badly; the load says how much.
        "loadavg_start": os.getloadavg(),
        "binarisation": {
            "vae": "MNIST 50k/10k split (seed 0), binarised once with seed 0 (not per batch)",
            "vamp": "static binarised MNIST (Larochelle), 50k/10k/10k",
        },
    }
    rows = []  # (case, mode, figure, unit)
    datasets = {}

    def get_data(kind: str) -> dict[str, torch.Tensor]:
        if kind not in datasets:
            loader = load_mnist_binarised if kind == "vae" else load_static_mnist
            datasets[kind] = loader(args.data_root)
        return datasets[kind]

    for kind in [c for c in cases if c in ("vae", "vamp")]:
        data = get_data(kind)
        entry = {}
        if not args.skip_trainer:
            t = entry["trainer"] = bench_trainer(kind, data, args.warmup, args.epoch_samples, not args.verbose)
            rows.append((kind, "BaseTrainer, steady steps", t["samples_per_s"], "samples/s"))
            rows.append((kind, "BaseTrainer, best window", t["best_window_samples_per_s"], "samples/s"))
            rows.append((kind, "BaseTrainer, whole train()", t["epoch_samples_per_s"], "samples/s"))
        b = entry["bare_loop"] = bench_bare(kind, data, args.warmup, args.steps)
        rows.append((kind, "bare forward+Adam loop", b["samples_per_s"], "samples/s"))
        rows.append((kind, "bare loop, best window", b["best_window_samples_per_s"], "samples/s"))
        result[kind] = entry

    if "nll" in cases:
        result["nll"] = {"note": "untrained (seeded random) weights; throughput only", "runs": []}
        if unknown := set(args.nll_models) - {"vae", "vamp"}:
            parser.error(f"--nll-models: unknown model(s) {', '.join(sorted(unknown))} (vae, vamp)")
        for kind in dict.fromkeys(args.nll_models):
            x = get_data(kind)["test"][: args.nll_points]
            for s in args.nll_samples:
                for no_grad in (False, True):
                    r = bench_nll(kind, x, s, no_grad)
                    r.update(model=kind, n_samples=s, no_grad=no_grad, chunk=100)
                    result["nll"]["runs"].append(r)
                    mode = f"get_nll S={s}" + (" under no_grad" if no_grad else "")
                    rows.append((kind, mode, r["points_per_s"], "points/s"))

    result["loadavg_end"] = os.getloadavg()
    print(f"\n{result['library']} — torch {torch.__version__}, {result['threads']} threads, {result['cpu']}")
    load0, load1 = result["loadavg_start"][0], result["loadavg_end"][0]
    print(f"load average (1 min): {load0:.1f} at start, {load1:.1f} at end")
    print(f"{'model':6s} {'measurement':34s} {'rate':>10s}")
    for kind, mode, value, unit in rows:
        print(f"{kind:6s} {mode:34s} {value:10.1f} {unit}")

    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
