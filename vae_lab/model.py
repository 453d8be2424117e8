"""VAEModule: encoder + latent family + decoder + likelihood, trained on a pluggable objective.

Every model of the papers reproduced here is this module with other parts plugged in (see
conf/): the latent family decides q(z|x), p(z) and the true KL; the decoder and likelihood decide
p(x|z); the objective decides what is minimised (``vae_lab.objectives``). Nothing in the training
step knows which family, objective or modality it runs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import lightning as L
import torch
from torch import nn
from torch.distributions import Distribution
from torchmetrics import CatMetric, MeanMetric, Metric

from vae_lab.compiling import (
    AUTO,
    MIN_EVAL_SAMPLES,
    MIN_TRAINING_STEPS,
    CompiledOrEager,
    check_setting,
    torch_compile,
    worth_compiling,
)
from vae_lab.latents.base import LatentFamily
from vae_lab.likelihoods.base import Likelihood
from vae_lab.metrics.holes import PER_DIMENSION, LatentHoles
from vae_lab.metrics.latent import ActiveUnits, MutualInformation, PerDimensionStatistics
from vae_lab.metrics.likelihood import bits_per_dim, log_mean_importance_weight, log_sum_weights
from vae_lab.objectives.base import Objective, Terms
from vae_lab.restore import CONFIG_KEY
from vae_lab.rng import batch_share, seeded_stream

EVAL_STAGES = ("val", "test", "train_set")  # train_set: the training data scored after fit (eval.train_set)
log = logging.getLogger(__name__)


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
        likelihood: Likelihood,
        objective: Objective,
        optimizer: Callable[..., torch.optim.Optimizer],
        data_dim: int,
        iw_samples_val: int = 0,
        iw_samples_test: int = 5000,
        iw_chunk_size: int = 500,
        eval_seed: int = 0,
        eval_compile: bool | str = AUTO,
        hole_samples: int = 128_000,
        collapse_threshold: float = 0.01,
        extra_metrics: Callable[[], dict[str, Metric]] | None = None,
        gradient_clip_val: float | None = None,
        compile: bool | str = False,
    ):
        super().__init__()
        objective.check(latent)  # e.g. free bits need a per-dimension KL: refuse before training
        # The step drives its optimiser itself: Lightning's automatic loop (closure, six hook
        # rounds, clipping plumbing) costs ~10 % of a small MLP's step on the CPU.
        self.automatic_optimization = False
        if gradient_clip_val is not None and gradient_clip_val <= 0:
            raise ValueError(f"grad_clip={gradient_clip_val}: the gradient-norm limit must be > 0, or null for none")
        self.gradient_clip_val = gradient_clip_val
        # torch.compile fuses the per-example loss (forward + backward) into a few kernels. It
        # pays its compilation once, so `compile=auto` compiles only long runs (decided at the
        # first step, see _decide_compiling). (Not `self.compile`: that is nn.Module's own method.)
        check_setting("compile", compile)
        self.compile_loss: bool | None = None if compile == AUTO else bool(compile)
        self._compiled_loss = None
        self._resumed_rng_state: dict | None = None
        self.encoder, self.latent, self.decoder, self.likelihood = encoder, latent, decoder, likelihood
        self.objective = objective
        self.optimizer_factory = optimizer
        self.data_dim = data_dim
        self.set_evaluation(iw_samples_val, iw_samples_test, iw_chunk_size, eval_seed, eval_compile, hole_samples)
        self.total_steps: int | None = None  # the run's optimiser steps, for step-based β schedules
        self.run_config: dict | None = None  # the composed config, saved in checkpoints (vae_lab.train sets it)
        # A deterministic objective (the autoencoder) has no ELBO, KL, NLL or aggregate posterior:
        # those metrics are absent, not NaN.
        stochastic = objective.stochastic
        names = ["neg_elbo", "recon", "kl", "nll"] if stochastic else ["recon"]
        names += ["bpd"] if likelihood.reports_bits_per_dim and stochastic else []
        names += ["mse"] if likelihood.has_data_space_mean else []

        # Dataset-level metrics, fresh per stage: I(x; z) wherever the posterior has a density,
        # plus the data's own (text: perplexities); each is updated by keyword with the batch's
        # quantities and ignores the rest.
        def dataset_metrics() -> dict[str, Metric]:
            if not stochastic:
                return {}
            return ({"mi": MutualInformation()} if latent.has_density else {}) | (
                extra_metrics() if extra_metrics else {}
            )

        self.extra_metric_names = list(dataset_metrics())
        # A non-finite per-example value makes the mean NaN, visibly: torchmetrics' default drops NaNs
        # with a warning and averages the rest, which turned a broken evaluation into a plausible NLL.
        self.eval_metrics = nn.ModuleDict(
            {
                stage: nn.ModuleDict(
                    {name: MeanMetric(nan_strategy="disable") for name in names}
                    | {"active_units": ActiveUnits(latent.latent_dim)}
                    | dataset_metrics()
                )
                for stage in EVAL_STAGES
            }
        )
        self.latent_statistics: dict | None = None  # the test set's hole metrics, for figures and the run folder
        # Watching collapse: per-dimension KL and posterior σ of every evaluation (Gaussian
        # posteriors), the count of collapsed dimensions (mean KL_d < collapse_threshold nats),
        # and their history over the validation epochs for the figures.
        self.collapse_threshold = collapse_threshold
        tracked = latent.has_kl_per_dimension and stochastic
        self.dimension_statistics = (
            nn.ModuleDict({stage: PerDimensionStatistics(latent.latent_dim) for stage in EVAL_STAGES})
            if tracked
            else None
        )
        self.dimension_history: list[dict] = []  # one {"epoch", "kl", "scale"} per validation epoch
        self.test_dimensions: dict | None = None  # the test set's, with every posterior's σ

        # Per-example test log-likelihoods (gathered over processes) for the histogram figure.
        self.test_log_likelihoods = CatMetric()

    def set_evaluation(
        self,
        iw_samples_val: int,
        iw_samples_test: int,
        iw_chunk_size: int,
        eval_seed: int,
        compile: bool | str = AUTO,
        hole_samples: int = 128_000,
    ) -> None:
        """Evaluation settings (importance samples, chunking, seed, compiling the decoder and density pass,
        prior samples of the hole metrics); ``vae_lab.evaluate`` changes them."""
        check_setting("eval.compile", compile)
        # The hole metrics need the posteriors' density and prior samples; test stage only.
        measurable = self.latent.has_density and self.latent.can_sample_prior and self.objective.stochastic
        self.latent_holes = (
            LatentHoles(hole_samples, seed=eval_seed, compile=compile) if hole_samples > 0 and measurable else None
        )
        self.iw_samples = {"val": iw_samples_val, "test": iw_samples_test, "train_set": 0}
        self.iw_chunk_size = iw_chunk_size
        self.eval_seed = eval_seed
        self.eval_compile = compile
        self._compiled_log_sum_weights = None

    # --- the model ------------------------------------------------------------------------
    def posterior(self, x: torch.Tensor) -> Distribution:
        return self.latent.posterior(self.encoder(x))

    def prior(self) -> Distribution:
        return self.latent.prior(self.posterior)

    def decode(self, z: torch.Tensor) -> Distribution:
        return self.likelihood(self.decoder(z))

    def terms(self, x: torch.Tensor) -> tuple[Terms, torch.Tensor | None]:
        """The batch's one-sample terms for the objective, and what the gradient correction needs."""
        q = self.posterior(x)
        z, sample_info = self.objective.latent_code(self.latent, q)
        px = self.decode(z)
        log_px = px.log_prob(x)
        p = self.prior()
        kl = self.latent.kl(q, p, z)
        return Terms(q=q, p=p, z=z, log_px=log_px, kl=kl, latent=self.latent, px=px), sample_info

    # --- training -------------------------------------------------------------------------
    def training_loss(self, x: torch.Tensor, beta: float | torch.Tensor):
        """Tensors only (so it can be compiled): the loss to minimise, log p(x|z) and the true KL
        per example, and the objective's own quantities to log."""
        terms, sample_info = self.terms(x)
        out = self.objective(terms, beta)
        loss = out.loss.mean()
        correction = self.latent.gradient_correction(terms.q, sample_info, out.loss)
        if correction is not None:
            loss = loss + correction.mean()  # zero in value; fixes the gradient
        return loss, terms.log_px, terms.kl, out.logs

    def _loss(self, x: torch.Tensor, beta: float):
        """``training_loss``, compiled when ``compile`` says so (β then enters as a tensor, so a
        changing β does not recompile)."""
        if self.compile_loss is None:
            self.compile_loss = self._decide_compiling(x, beta)
        if not self.compile_loss:
            return self.training_loss(x, beta)
        if self._compiled_loss is None:
            self._untraced_pass(x, beta)
            self._compiled_loss = torch_compile(self.training_loss)
        return self._compiled_loss(x, torch.tensor(beta, device=x.device))

    def _untraced_pass(self, x: torch.Tensor, beta: float, fn: Callable | None = None):
        """Run the loss once without gradients and give back its noise draw. Before compiling it
        fills Python-level caches dynamo cannot trace (the lookup in torch.distributions' KL
        registry); otherwise the compiled step is split in two graphs, ~20 % slower."""
        cuda = [self.device] if self.device.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=cuda):
            return (fn or self.training_loss)(x, beta)

    def _decide_compiling(self, x: torch.Tensor, beta: float) -> bool:
        """``compile=auto``: compile a run of at least MIN_TRAINING_STEPS steps whose loss traces
        into one graph (a graph break, e.g. the vMF rejection sampler's loop or an LSTM, would
        leave eager code between compiled pieces), and say what was decided and why."""
        steps = self.total_steps or 0
        if not worth_compiling(AUTO, self.device.type, repays=steps >= MIN_TRAINING_STEPS):
            reason = f"{steps} steps < {MIN_TRAINING_STEPS}" if steps < MIN_TRAINING_STEPS else "no compiler found"
            log.info("compile=auto: training eagerly (%s)", reason)
            return False
        self._untraced_pass(x, beta)
        explanation = self._untraced_pass(x, beta, torch._dynamo.explain(self.training_loss))
        if explanation.graph_break_count:
            reason = str(explanation.break_reasons[0].reason).splitlines()[0][:200]
            log.info("compile=auto: training eagerly, the loss does not trace into one graph (%s)", reason)
            return False
        log.info("compile=auto: compiling the training loss (%d steps, one graph)", steps)
        return True

    def on_train_start(self) -> None:
        """The run's length in optimiser steps (Lightning counts groups of ``steps_per_call``),
        and the training noise's stream: every process starts it from the same state as one
        process would (Lightning re-seeds DDP processes after the model is built), so the
        global-batch draws of :func:`vae_lab.rng.draw_for_share` agree; a resumed run continues
        the checkpoint's stream instead."""
        if self._resumed_rng_state is not None:
            self._set_rng_state(self._resumed_rng_state)
            self._resumed_rng_state = None
        else:
            torch.manual_seed(self.eval_seed)
        trainer = self.trainer
        if trainer.max_steps > 0:
            self.total_steps = trainer.max_steps
            return
        groups = trainer.estimated_stepping_batches
        per_group = trainer.datamodule.steps_per_call if trainer.datamodule is not None else 1
        self.total_steps = int(groups) * per_group if math.isfinite(groups) else None

    def training_step(self, batch, batch_idx):
        group, _ = batch  # a BatchGroup of steps_per_call batches: one optimiser step each
        stepped = None
        for x in group:
            if stepped is not None and 0 <= self.trainer.max_steps <= self.global_step:
                break  # max_steps falls inside the group
            stepped = self._optimizer_step(x)
        loss, log_px, kl, logs = stepped
        if self._logs_this_step():  # the group's last step stands for it
            self.log("train/loss", loss, prog_bar=True)
            self.log_dict(
                {"train/recon": -log_px.mean()} | ({"train/kl": kl.mean()} if self.objective.stochastic else {})
            )
            self.log_dict({f"train/{name}": value for name, value in logs.items()})
            self.log_dict({f"train/{name}": value for name, value in self.likelihood.training_logs().items()})
        return loss

    def _optimizer_step(self, x):
        """One gradient step of the objective on batch ``x``; returns the loss and terms for logging."""
        beta = self.objective.beta(self.global_step, self.current_epoch, self.total_steps)
        with batch_share(self.global_rank, self.trainer.world_size):  # x is this process's share of the batch
            loss, log_px, kl, logs = self._loss(x, beta)
        if not torch.isfinite(loss):
            self._stop_on_non_finite(log_px, kl)
        optimizer = self.optimizers()
        optimizer.zero_grad()
        self.manual_backward(loss)  # precision scaling and DDP gradient sync happen here
        if self.gradient_clip_val is not None:
            self._clip_gradients(optimizer)
        optimizer.step()
        return loss, log_px, kl, logs

    def _clip_gradients(self, optimizer) -> None:
        # Lightning refuses to clip for a fused optimiser under any mixed precision, since an fp16
        # loss scaler would leave the gradients scaled; bf16 has no scaler, so they are final here.
        if getattr(self.trainer.precision_plugin, "scaler", None) is None:
            torch.nn.utils.clip_grad_norm_(self.parameters(), self.gradient_clip_val)
        else:
            self.clip_gradients(optimizer, gradient_clip_val=self.gradient_clip_val, gradient_clip_algorithm="norm")

    def _logs_this_step(self) -> bool:
        """Only on the steps the loggers write: each ``self.log`` costs ~0.5 ms of Lightning
        bookkeeping, a sizeable share of a small model's step on the CPU."""
        connector = getattr(self._trainer, "_logger_connector", None)
        return getattr(connector, "should_update_logs", True)

    def _stop_on_non_finite(self, log_px: torch.Tensor, kl: torch.Tensor) -> None:
        terms = {
            "reconstruction log p(x|z)": log_px,
            f"KL of {self.latent.name}": kl,
        }
        bad = [name for name, value in terms.items() if not torch.isfinite(value).all()]
        bad = bad or [f"{self.objective.name} loss"]
        checkpoint = getattr(self.trainer.checkpoint_callback, "last_model_path", "") or "none saved yet"
        raise NonFiniteLossError(
            f"non-finite {' and '.join(bad)} at step {self.global_step} (epoch {self.current_epoch}); "
            f"training stopped. Last good checkpoint: {checkpoint}",
            step=self.global_step,
        )

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, map_location="cpu", **_) -> VAEModule:
        """Rebuild the model from the checkpoint alone (its composed config is inside): ``vae_lab.load``."""
        from vae_lab.restore import load

        return load(checkpoint_path, map_location)

    # Resuming must continue the same random stream (reparameterisation noise), not restart it.
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.run_config is not None:
            checkpoint[CONFIG_KEY] = self.run_config
        checkpoint["rng_state"] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available() and self.device.type == "cuda":
            checkpoint["rng_state"]["cuda"] = torch.cuda.get_rng_state(self.device)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("rng_state")
        if state and self._trainer is not None and self._trainer.state.fn == "fit":
            self._resumed_rng_state = state  # applied in on_train_start, after Lightning's seeding

    def _set_rng_state(self, state: dict) -> None:
        torch.set_rng_state(state["torch"])
        if "cuda" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda"], self.device)

    def configure_optimizers(self):
        return self.optimizer_factory(self.parameters())

    # --- evaluation -----------------------------------------------------------------------
    # Lightning's validate loop scores both the validation set and, after fit, the training set
    # (eval.train_set); this names the stage its metrics are logged under.
    validation_stage = "val"

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, self.validation_stage)

    def _dimension_summary(self, stage: str) -> dict | None:
        """The stage's per-dimension statistics (gathered over processes), logging the collapsed count."""
        if self.dimension_statistics is None or self.dimension_statistics[stage].update_count == 0:
            return None
        statistics = self.dimension_statistics[stage].compute()
        self.dimension_statistics[stage].reset()
        collapsed = (statistics["kl"] < self.collapse_threshold).sum().float()
        self.log(f"{stage}/collapsed_dims", collapsed)
        return {k: v.cpu() for k, v in statistics.items()}

    def on_validation_epoch_end(self) -> None:
        summary = self._dimension_summary(self.validation_stage)
        if summary is not None and not self.trainer.sanity_checking and self.trainer.state.fn == "fit":
            self.dimension_history.append({"epoch": self.current_epoch, "kl": summary["kl"], "scale": summary["scale"]})

    def on_test_epoch_start(self) -> None:
        self.test_log_likelihoods.reset()
        if self.latent_holes is not None:
            self.latent_holes.reset()
        self.latent_statistics = None

    def on_test_epoch_end(self) -> None:
        """The hole metrics and per-dimension statistics over the whole test set (every process
        computes the same values)."""
        self.test_dimensions = self._dimension_summary("test")
        holes = self.latent_holes
        if holes is None or holes.update_count == 0:
            return
        values = dict(holes.compute())
        self.latent_statistics = {name: values.pop(name, None) for name in (*PER_DIMENSION, "posterior_means")}
        self.latent_statistics |= {"not_applicable": holes.not_applicable, "prior_samples": holes.prior_samples}
        if holes.not_applicable:
            log.info("CU (dimensions without holes): not applicable, %s", holes.not_applicable)
        for name, value in values.items():
            self.log(f"test/{name}", value)

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
            terms, _ = self.terms(x)
            q, log_px, kl = terms.q, terms.log_px, terms.kl
            metrics = self.eval_metrics[stage]
            per_example = {"neg_elbo": kl - log_px, "recon": -log_px, "kl": kl}
            if "mse" in metrics:  # per-dimension squared error of the decoded mean at z
                per_example["mse"] = (terms.px.mean - x).square().mean(-1)
            for name, values in per_example.items():
                if name in metrics:
                    metrics[name].update(values)
            metrics["active_units"].update(self.latent.posterior_mean(q))
            if self.dimension_statistics is not None:
                self.dimension_statistics[stage].update(terms.kl_per_dimension(), self.latent.posterior_scale(q))
            num_samples = self.iw_samples[stage] if "nll" in metrics else 0
            nll = None
            if num_samples > 0 and self.latent.has_density:
                nll = -self.log_likelihood(x, q, num_samples)
                metrics["nll"].update(nll)
                if stage == "test":
                    self.test_log_likelihoods.update(-nll)
                if self.likelihood.reports_bits_per_dim:
                    metrics["bpd"].update(bits_per_dim(nll, self.data_dim))
            for name in self.extra_metric_names:
                metrics[name].update(model=self, x=x, neg_elbo=kl - log_px, nll=nll)
            if stage == "test" and self.latent_holes is not None:
                self.latent_holes.update(model=self, x=x, batch_index=batch_index)
        for name, value in self.likelihood.training_logs().items():  # e.g. the learned variance γ
            self.log(f"{stage}/{name}", value)
        for name, metric in metrics.items():
            if (name in ("nll", "bpd") or getattr(metric, "requires_nll", False)) and num_samples == 0:
                continue
            self.log(f"{stage}/{name}", metric, prog_bar=name in ("neg_elbo", "nll"))

    def log_likelihood(self, x: torch.Tensor, q: Distribution, num_samples: int) -> torch.Tensor:
        """Importance-sampled log p(x) per example (B,), chunked to bound memory."""
        log_sum_weights = self._log_sum_weights
        # Variable-length data (sentences batched by length) would recompile the pass for every new length.
        repays = num_samples >= MIN_EVAL_SAMPLES and self.likelihood.fixed_shape
        if worth_compiling(self.eval_compile, self.device.type, repays=repays):
            # The pass is matmuls plus elementwise work over S × B × D values (gates, clamp,
            # log-likelihood, sum), the prior's density (the VampPrior's: a 500-component mixture),
            # the posterior's and the log-sum-exp; compiled, the elementwise part is fused into a few kernels.
            if self._compiled_log_sum_weights is None:
                self._compiled_log_sum_weights = CompiledOrEager(
                    self._log_sum_weights, "the evaluation's decoder and density pass", dynamic=False
                )
            log_sum_weights = self._compiled_log_sum_weights
        prior = self.prior()
        # Where the family's density would cost compile time for little gain (the vMF's Bessel
        # functions), it is computed eagerly and handed to the pass.
        eager_log_q = not self.latent.posterior_density_compiles
        samples = self.latent.sample_in_chunks(q, num_samples, self.iw_chunk_size)
        return log_mean_importance_weight(
            samples, lambda z: log_sum_weights(z, x, prior, q, q.log_prob(z) if eager_log_q else None), num_samples
        )

    def _log_sum_weights(
        self, z: torch.Tensor, x: torch.Tensor, prior: Distribution, q: Distribution, log_q: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``log_sum_weights`` of this model's decoder on one chunk of samples (the pass eval.compile compiles)."""
        return log_sum_weights(z, prior, q, lambda z: self.decode(z).log_prob(x), log_q)

    # --- media ----------------------------------------------------------------------------
    @property
    def has_prior_samples(self) -> bool:
        """Prior samples mean something: the family can draw them and the objective trains a prior."""
        return self.latent.can_sample_prior and self.objective.stochastic

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """Decoder means of n draws from the prior, shape (n, D)."""
        return self.decode(self.prior().sample((n,))).mean

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.posterior(x).mode).mean  # the mode stays on the sphere for vMF
