"""VAEModule: encoder + latent family + decoder + likelihood, trained with the one ELBO.

Every model of the papers reproduced here is this module with other parts plugged in (see
conf/): the latent family decides q(z|x), p(z) and the divergence; the decoder and likelihood
decide p(x|z). Nothing in the training step knows which family or modality it runs.
"""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
from torch import nn
from torch.distributions import Distribution
from torchmetrics import CatMetric, MeanMetric, Metric

from vae_lab.data.datamodule import BatchGroup
from vae_lab.latents.base import LatentFamily
from vae_lab.metrics.latent import ActiveUnits
from vae_lab.metrics.likelihood import bits_per_dim, importance_sampled_log_likelihood
from vae_lab.objective import ELBO
from vae_lab.rng import seeded_stream

EVAL_STAGES = ("val", "test")


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN/inf; says which term, where, and the last good checkpoint."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


class VAEModule(L.LightningModule):
    def __init__(
        self,
        encoder: nn.Module,
        latent: LatentFamily,
        decoder: nn.Module,
        likelihood: nn.Module,
        objective: ELBO,
        optimizer: Callable[..., torch.optim.Optimizer],
        data_dim: int,
        report_bits_per_dim: bool = False,
        iw_samples_val: int = 0,
        iw_samples_test: int = 5000,
        iw_chunk_size: int = 500,
        eval_seed: int = 0,
        extra_metrics: Callable[[], dict[str, Metric]] | None = None,
        gradient_clip_val: float | None = None,
        compile: bool = False,
    ):
        super().__init__()
        # The step drives its optimiser itself: Lightning's automatic loop (closure, six hook
        # rounds, clipping plumbing) costs ~10 % of a small MLP's step on the CPU.
        self.automatic_optimization = False
        if gradient_clip_val is not None and gradient_clip_val <= 0:
            raise ValueError(f"grad_clip={gradient_clip_val}: the gradient-norm limit must be > 0, or null for none")
        self.gradient_clip_val = gradient_clip_val
        # torch.compile fuses the per-example ELBO terms (forward + backward) into a few kernels;
        # it pays ~25 s of compilation once, so it is opt-in (`compile=true`). Built on first use.
        self.compile_terms = compile  # (not `self.compile`: that is nn.Module's own method)
        self._compiled_training_terms = None
        self.encoder, self.latent, self.decoder, self.likelihood = encoder, latent, decoder, likelihood
        self.objective = objective
        self.optimizer_factory = optimizer
        self.data_dim = data_dim
        self.report_bits_per_dim = report_bits_per_dim
        self.iw_samples = {"val": iw_samples_val, "test": iw_samples_test}
        self.iw_chunk_size = iw_chunk_size
        self.eval_seed = eval_seed
        names = ["neg_elbo", "recon", "kl", "nll"] + (["bpd"] if report_bits_per_dim else [])
        # Data-specific dataset-level metrics (text: perplexities, mutual information), fresh per
        # stage; each is updated by keyword with the batch's quantities and ignores the rest.
        self.extra_metric_names = list(extra_metrics()) if extra_metrics else []
        self.eval_metrics = nn.ModuleDict(
            {
                stage: nn.ModuleDict(
                    {name: MeanMetric() for name in names}
                    | {"active_units": ActiveUnits(latent.latent_dim)}
                    | (extra_metrics() if extra_metrics else {})
                )
                for stage in EVAL_STAGES
            }
        )

        # Per-example test log-likelihoods (gathered over processes) for the histogram figure.
        self.test_log_likelihoods = CatMetric()

    # --- the model ------------------------------------------------------------------------
    def posterior(self, x: torch.Tensor) -> Distribution:
        return self.latent.posterior(self.encoder(x))

    def prior(self) -> Distribution:
        return self.latent.prior(self.posterior)

    def decode(self, z: torch.Tensor) -> Distribution:
        return self.likelihood(self.decoder(z))

    def elbo_terms(self, x: torch.Tensor):
        """One-sample ELBO parts per example: q(z|x), log p(x|z) (B,), divergence (B,)."""
        q = self.posterior(x)
        z = q.rsample()
        log_px = self.decode(z).log_prob(x)
        return q, log_px, self.latent.divergence(q, self.prior(), z)

    # --- training -------------------------------------------------------------------------
    def training_terms(self, x: torch.Tensor):
        """Tensors only (so it can be compiled): log p(x|z), divergence and the latent family's
        gradient correction (None for reparameterisable families), per example."""
        q, log_px, divergence = self.elbo_terms(x)
        return log_px, divergence, self.latent.gradient_correction(q, -log_px)

    def _step_terms(self, x: torch.Tensor):
        """``training_terms``, compiled when ``compile=true``."""
        if not self.compile_terms:
            return self.training_terms(x)
        if self._compiled_training_terms is None:
            # One eager pass first fills Python-level caches that dynamo cannot trace (the lookup
            # in torch.distributions' KL registry); otherwise the compiled step is split in two
            # graphs with eager code between them, ~20 % slower. Its noise draw is undone.
            cuda = [self.device] if self.device.type == "cuda" else []
            with torch.no_grad(), torch.random.fork_rng(devices=cuda):
                self.training_terms(x)
            self._compiled_training_terms = torch.compile(self.training_terms)
        return self._compiled_training_terms(x)

    def training_step(self, batch, batch_idx):
        x, _ = batch
        # steps_per_call > 1: one optimiser step per batch of the group, stopping at max_steps.
        parts = x if isinstance(x, BatchGroup) else [x]
        terms = None
        for part in parts:
            if terms is not None and 0 <= self.trainer.max_steps <= self.global_step:
                break
            terms = self._optimizer_step(part)
        loss, log_px, divergence, beta = terms
        if self._logs_this_step():  # the group's last step stands for it
            self.log("train/loss", loss, prog_bar=True)
            self.log_dict({"train/recon": -log_px.mean(), "train/kl": divergence.mean(), "train/beta": beta})
        return loss

    def _optimizer_step(self, x):
        """One ELBO gradient step on batch ``x``; returns the loss and its terms for logging."""
        log_px, divergence, correction = self._step_terms(x)
        beta = self.objective.beta(self.current_epoch)
        loss = self.objective.loss(log_px, divergence, beta)
        if correction is not None:
            loss = loss + correction.mean()  # zero in value; fixes the gradient
        if not torch.isfinite(loss):
            self._stop_on_non_finite(log_px, divergence)
        optimizer = self.optimizers()
        optimizer.zero_grad()
        self.manual_backward(loss)  # precision scaling and DDP gradient sync happen here
        if self.gradient_clip_val is not None:
            self.clip_gradients(optimizer, gradient_clip_val=self.gradient_clip_val, gradient_clip_algorithm="norm")
        optimizer.step()
        return loss, log_px, divergence, beta

    def _logs_this_step(self) -> bool:
        """Only on the steps the loggers write: each ``self.log`` costs ~0.5 ms of Lightning
        bookkeeping, a sizeable share of a small model's step on the CPU."""
        connector = getattr(self._trainer, "_logger_connector", None)
        return getattr(connector, "should_update_logs", True)

    def _stop_on_non_finite(self, log_px: torch.Tensor, divergence: torch.Tensor) -> None:
        terms = {
            "reconstruction log p(x|z)": log_px,
            f"KL/regulariser of {type(self.latent).__name__}": divergence,
        }
        bad = [name for name, value in terms.items() if not torch.isfinite(value).all()] or ["total loss"]
        checkpoint = getattr(self.trainer.checkpoint_callback, "last_model_path", "") or "none saved yet"
        raise NonFiniteLossError(
            f"non-finite {' and '.join(bad)} at step {self.global_step} (epoch {self.current_epoch}); "
            f"training stopped. Last good checkpoint: {checkpoint}",
            step=self.global_step,
        )

    # Resuming must continue the same random stream (reparameterisation noise), not restart it.
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["rng_state"] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available() and self.device.type == "cuda":
            checkpoint["rng_state"]["cuda"] = torch.cuda.get_rng_state(self.device)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("rng_state")
        if state and self._trainer is not None and self._trainer.state.fn == "fit":
            torch.set_rng_state(state["torch"])
            if "cuda" in state and self.device.type == "cuda":
                torch.cuda.set_rng_state(state["cuda"], self.device)

    def configure_optimizers(self):
        return self.optimizer_factory(self.parameters())

    # --- evaluation -----------------------------------------------------------------------
    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "val")

    def on_test_epoch_start(self) -> None:
        self.test_log_likelihoods.reset()

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, "test")

    def _evaluate(self, batch, stage: str) -> None:
        x, batch_index = batch
        # Each batch draws from its own seeded stream, so results do not depend on how the
        # evaluation set is sharded over processes (DDP equals one process) or on chunking.
        # Evaluation is fp32 even when training runs under bf16 autocast (trainer.precision).
        with (
            seeded_stream(self.eval_seed * 1_000_003 + int(batch_index), self.device),
            torch.autocast(self.device.type, enabled=False),
        ):
            q, log_px, divergence = self.elbo_terms(x)
            metrics = self.eval_metrics[stage]
            metrics["neg_elbo"].update(divergence - log_px)
            metrics["recon"].update(-log_px)
            metrics["kl"].update(divergence)
            metrics["active_units"].update(self.latent.posterior_mean(q))
            num_samples = self.iw_samples[stage]
            nll = None
            if num_samples > 0:
                nll = -self.log_likelihood(x, q, num_samples)
                metrics["nll"].update(nll)
                if stage == "test":
                    self.test_log_likelihoods.update(-nll)
                if self.report_bits_per_dim:
                    metrics["bpd"].update(bits_per_dim(nll, self.data_dim))
            for name in self.extra_metric_names:
                metrics[name].update(model=self, x=x, neg_elbo=divergence - log_px, nll=nll)
        for name, metric in metrics.items():
            if (name in ("nll", "bpd") or getattr(metric, "requires_nll", False)) and num_samples == 0:
                continue
            self.log(f"{stage}/{name}", metric, prog_bar=name in ("neg_elbo", "nll"))

    def log_likelihood(self, x: torch.Tensor, q: Distribution, num_samples: int) -> torch.Tensor:
        """Importance-sampled log p(x) per example (B,), chunked to bound memory."""
        return importance_sampled_log_likelihood(
            q, self.prior(), lambda z: self.decode(z).log_prob(x), num_samples, self.iw_chunk_size
        )

    # --- media ----------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """Decoder means of n draws from the prior, shape (n, D)."""
        return self.decode(self.prior().sample((n,))).mean

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.posterior(x).mode).mean  # the mode stays on the sphere for vMF
