"""The jobs of a sweep as the report sees them, read through :mod:`vae_lab.run_folder` only."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from vae_lab.report.names import prior_from_target
from vae_lab.run_folder import CONFIG_FILE, Evaluation, RunFolder, job_folders

NLL, BPD = "test/nll", "test/bpd"


@dataclass
class Job:
    run: RunFolder
    config: DictConfig
    status: str  # ok (finished) | failed | unfinished
    summary: dict | None  # the finished job's summary (epochs, steps, metrics)
    prior: str  # the `prior=` choice
    _evaluations: dict = field(default_factory=dict, repr=False)

    @classmethod
    def read(cls, run: RunFolder) -> Job:
        config = run.config()
        prior = run.choice("prior") or prior_from_target(OmegaConf.select(config, "prior._target_", default="?"))
        return cls(run, config, run.status(), run.summary(), prior)

    def get(self, key: str, default=None):
        return OmegaConf.select(self.config, key, default=default)

    @property
    def kind(self) -> str:
        """Which table the job belongs to: the one its experiment names (``report:``), else by data
        (text data configs declare their extra metrics: perplexities)."""
        if self.get("report") is not None:
            return str(self.get("report"))
        return "text" if self.get("data.metrics") is not None else "image"

    @property
    def objective(self) -> str:
        """The objective's class name (``DensityGapELBO``)."""
        return str(self.get("objective._target_", "ELBO")).rsplit(".", 1)[-1]

    @property
    def dataset(self) -> str:
        return str(self.config.data.name)

    @property
    def seed(self) -> int:
        return int(self.config.seed)

    @property
    def latent(self) -> int:
        return int(self.config.latent)

    @property
    def kappa(self) -> float | None:
        """The fixed κ of a vMF-like prior; None when learned or when the prior has none."""
        return self.get("prior.kappa")

    @property
    def progress(self) -> str:
        if self.status != "ok":
            return self.status
        return f"{self.summary.get('epochs', '?')} ep / {self.summary.get('steps', '?')} steps"

    def evaluation(self, metric: str) -> Evaluation | None:
        """The most precise evaluation (most test importance samples) that measured ``metric``."""
        if metric not in self._evaluations:
            self._evaluations[metric] = self.run.most_precise_evaluation(metric)
        return self._evaluations[metric]


def read_jobs(roots: list[Path]) -> list[Job]:
    runs = job_folders(roots)
    if not runs:
        raise SystemExit(
            f"no job folders under {', '.join(map(str, roots))}: expected runs of `python -m vae_lab.train`"
            f" (folders holding {CONFIG_FILE})"
        )
    return [Job.read(run) for run in runs]


def nll_metric(job: Job) -> str:
    """``test/bpd`` where the job's NLL is reported in bits/dim, else ``test/nll`` (nats).

    Decided by, in turn: the job's metrics; ``data.bits_per_dim`` of older configs; the
    likelihood class's ``reports_bits_per_dim`` (a class that cannot be imported counts as nats).
    """
    if job.evaluation(BPD) is not None:
        return BPD
    if job.get("data.bits_per_dim") is not None:
        return BPD if job.get("data.bits_per_dim") else NLL
    target = job.get("likelihood._target_") or job.get("data.likelihood._target_")
    try:
        bits = bool(getattr(get_class(target), "reports_bits_per_dim", False)) if target else False
    except Exception:  # the class moved or its module does not import: no way to tell, say nats
        bits = False
    return BPD if bits else NLL
