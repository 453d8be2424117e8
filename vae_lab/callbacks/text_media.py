"""Text media: sentences sampled from the prior, reconstructions, interpolations between two sentences.

Written as text files in the run folder (``media/{samples,reconstructions,interpolations}_<tag>.txt``)
and as W&B tables when a WandbLogger is attached. Drawing them runs on its own seeded stream, so
it never shifts the training random stream.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from vae_lab.callbacks.media import interpolate
from vae_lab.rng import seeded_stream


class TextMediaLogger(L.Callback):
    """Every ``every_n_epochs`` validation epochs and after testing, from the valid/test split."""

    def __init__(self, output_dir: str, every_n_epochs: int = 5, num_sentences: int = 10, steps: int = 5):
        self.output_dir = Path(output_dir)
        self.every_n_epochs, self.num_sentences, self.steps = every_n_epochs, num_sentences, steps

    @rank_zero_only
    def emit(self, trainer, pl_module, split, tag: str) -> dict[str, list[list[str]]]:
        vocabulary = trainer.datamodule.vocabulary
        words = lambda ids: [vocabulary.decode(row) for row in ids]  # noqa: E731
        x = split[torch.arange(min(self.num_sentences, len(split)), device=split.device)]
        with seeded_stream(0, pl_module.device), torch.inference_mode():
            was_training = pl_module.training
            pl_module.eval()
            codes = pl_module.posterior(x).mode  # (n, L)
            tables = {"reconstructions": list(zip(words(x), words(pl_module.decode(codes).mode), strict=True))}
            if pl_module.has_prior_samples:
                prior_z = pl_module.prior().sample((self.num_sentences,))
                tables["samples"] = [[s] for s in words(pl_module.decode(prior_z).sample())]
            if len(x) >= 2:
                path = interpolate(codes[0], codes[1], self.steps)
                tables["interpolations"] = [
                    [f"{t}/{self.steps - 1}", s] for t, s in enumerate(words(pl_module.decode(path).mode))
                ]
            pl_module.train(was_training)
        columns = {
            "samples": ["sample"],
            "reconstructions": ["input", "greedy reconstruction"],
            "interpolations": ["step", "sentence"],
        }
        self.output_dir.mkdir(parents=True, exist_ok=True)
        for name, rows in tables.items():
            text = "\n".join(" | ".join(row) for row in rows) + "\n"
            (self.output_dir / f"{name}_{tag}.txt").write_text(text)
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):
                    logger.log_text(key=f"media/{name}", columns=columns[name], data=[list(r) for r in rows])
        return tables

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or trainer.fast_dev_run:
            return
        epoch = trainer.current_epoch
        if (epoch + 1) % self.every_n_epochs == 0:
            self.emit(trainer, pl_module, trainer.datamodule.splits.valid, f"epoch{epoch:04d}")

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.fast_dev_run:
            self.emit(trainer, pl_module, trainer.datamodule.splits.test, "test")
