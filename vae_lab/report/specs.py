"""The table of each kind of experiment: one :class:`~vae_lab.report.tables.TableSpec` each.

``SPECS`` lists them in the order the report prints them; a job goes to the spec of its kind.
"""

from __future__ import annotations

from pathlib import Path

from vae_lab.report import plots, references
from vae_lab.report.jobs import BPD, Job, nll_metric
from vae_lab.report.names import VAMPPRIOR_PAPER_NAMES, collapse_model_name, prior_name, prior_order
from vae_lab.report.tables import Metric, Reference, Row, Table, TableSpec

UNITS = {"test/nll": "nats", BPD: "bits/dim"}


class ImageNLLSpec(TableSpec):
    """The VampPrior paper's layout, one table per dataset: rows latent size (plus hidden width and
    K where they vary among the jobs), columns prior, cells test NLL in nats or bits/dim, mean ±
    std over seeds; reference values from REFERENCE.md §1."""

    kind = "image"
    csv_file = "report.csv"
    column_field = "prior"
    label_titles = {"components": "K"}
    arch = {"hidden": "encoder.hidden", "components": "prior.components"}  # row keys where they vary
    reference_defaults = {"hidden": 300, "components": 500}  # the reproduction's, where a row does not say

    def group(self, job: Job) -> dict:
        return {"dataset": job.dataset, "metric": nll_metric(job)}

    def describe(self, fields: dict) -> tuple[str, str]:
        return fields["dataset"], f"test NLL ({UNITS[fields['metric']]})"

    def rows(self, jobs: list[Job]) -> list[Row]:
        arch = [{k: j.get(key) for k, key in self.arch.items()} for j in jobs]
        varying = [k for k in self.arch if len({a[k] for a in arch} - {None}) > 1]
        # Rows come from jobs that set every varying key (a prior without K cannot define a K row).
        settings = {(j.latent, *(a[k] for k in varying)) for j, a in zip(jobs, arch, strict=True)}
        keys = sorted(key for key in settings if None not in key)
        if not keys:  # no job sets every varying key
            keys = sorted({(j.latent,) + (None,) * len(varying) for j in jobs})
        rows = []
        for key in keys:
            label = dict(zip(["latent", *varying], key, strict=True))
            # A job fills a row when its settings agree; a setting its prior lacks (None) matches any.
            here = [
                j
                for j, a in zip(jobs, arch, strict=True)
                if j.latent == label["latent"] and all(a[k] in (None, label[k]) for k in varying)
            ]
            rows.append(Row(label, here))
        return rows

    def columns(self, fields: dict, jobs: list[Job], reference: bool) -> list[Metric | Reference]:
        digits = 3 if fields["metric"] == BPD else 2
        columns = []
        for prior, kappa in sorted({(j.prior, j.kappa) for j in jobs}, key=lambda p: prior_order(*p)):
            key = prior if kappa is None else f"{prior} kappa={kappa:g}"
            title = prior_name(prior, kappa, VAMPPRIOR_PAPER_NAMES)
            columns.append(
                Metric(key, title, fields["metric"], digits, lambda j, p=(prior, kappa): (j.prior, j.kappa) == p)
            )
            if reference:
                columns.append(Reference(key, digits=digits))
        return columns

    def reference(self, fields: dict, label: dict, column: Metric) -> float | None:
        settings = self.reference_defaults | {k: v for k, v in label.items() if v is not None}
        return references.lookup("vampprior.csv", **fields, **settings, prior=column.key)

    def note_metric(self, fields: dict) -> str:
        return fields["metric"]

    def figures(self, out: Path, tables: list[Table], jobs: list[Job]) -> None:
        plots.plot_tables(out / "report.png", tables)
        runs = []
        for job in jobs:
            values = job.run.log_likelihoods() if job.status == "ok" else None
            if values is not None:
                k = job.get("prior.components")
                name = prior_name(job.prior, job.kappa, VAMPPRIOR_PAPER_NAMES) + (f" K {k}" if k is not None else "")
                runs.append((job.dataset, job.latent, f"{name} s{job.seed}", values))
        plots.plot_log_likelihoods(out / "log_likelihoods.png", runs)


class TextSpec(TableSpec):
    """Text VAEs (Xu & Durrett, He et al.): one row per job with its progress, the ELBO perplexity
    (the figure the vMF paper reports), importance-sampled perplexity and NLL, KL, mutual
    information and active units, beside the paper's vMF perplexity (REFERENCE.md §3)."""

    kind = "text"
    csv_file = "report_text.csv"
    per_job = True
    metrics = ("ppl_elbo", "ppl", "nll", "kl", "mi", "active_units")

    def describe(self, fields: dict) -> tuple[str, str]:
        return "text VAEs", "test metrics (perplexities per token, NLL/KL/MI in nats per example)"

    def label(self, job: Job) -> dict:
        return {
            "data": job.dataset,
            "prior": prior_name(job.prior, job.kappa),
            "seed": job.seed,
            "status": job.progress,
        }

    def columns(self, fields: dict, jobs: list[Job], reference: bool) -> list[Metric | Reference]:
        columns = [Metric(m, m, f"test/{m}") for m in self.metrics]
        return columns + [Reference("ppl_elbo", "paper vMF ppl", digits=0)]  # always: the paper's headline

    def reference(self, fields: dict, label: dict, column: Metric) -> float | None:
        if column.key != "ppl_elbo":
            return None
        return references.lookup("xu_durrett.csv", dataset=label["data"], prior="vmf", metric=column.metric)


class DensityGapSpec(TableSpec):
    """The density-gap paper's comparison (REFERENCE.md §4): one row per model with its
    hyper-parameter (``DG-VAE (|b| 32)``, ``BN-VAE (γ 0.7)``), mean ± std over seeds, one table per
    dataset. Columns: NLL (importance-sampled −log p(x)), −ELBO, reconstruction, KL, MI, AU, CU(0.03)
    and the joint KL(p ‖ q_agg) of the hole metrics; CU is "n/a" where the family has no
    per-dimension marginals (the sphere)."""

    kind = "density_gap"
    csv_file = "report_density_gap.csv"
    label_titles = {"model": "model"}
    metrics = (
        ("nll", "NLL", "test/nll"),
        ("neg_elbo", "−ELBO", "test/neg_elbo"),
        ("recon", "recon", "test/recon"),
        ("kl", "KL", "test/kl"),
        ("mi", "MI", "test/mi"),
        ("active_units", "AU", "test/active_units"),
        ("cu", "CU(0.03)", "test/cu_0.03"),
        ("kl_holes", "KL(p‖q_agg)", "test/kl_prior_to_aggregate"),
    )

    def group(self, job: Job) -> dict:
        return {"dataset": job.dataset}

    def describe(self, fields: dict) -> tuple[str, str]:
        return fields["dataset"], "density-gap comparison (nats per example; AU, CU in dimensions)"

    def label(self, job: Job) -> dict:
        return {"model": collapse_model_name(job.objective, job.prior, job.get)}

    def columns(self, fields: dict, jobs: list[Job], reference: bool) -> list[Metric | Reference]:
        digits = {"active_units": 1, "cu": 1}
        return [
            Metric(key, title, metric, digits.get(key, 2), applies=_has_marginals if key == "cu" else None)
            for key, title, metric in self.metrics
        ]


def _has_marginals(job: Job) -> bool:
    """CU needs per-dimension marginals: the job's latent_space.json says when they are missing."""
    statistics = job.run.latent_space()
    return not (statistics and statistics.get("not_applicable"))


class CollapseDepthSpec(TableSpec):
    """Dai, Wang & Wipf's Figure 1 (left) as a table, one per dataset and network kind: rows the
    decoder depth (the encoder's follows it), columns the autoencoder's and the VAE's per-pixel
    reconstruction MSE, and for the VAE its KL, active units, collapsed dimensions (mean KL_d <
    the threshold) and learned γ; mean ± std over seeds. The plot: MSE against depth, AE vs VAE."""

    kind = "collapse_depth"
    csv_file = "report_collapse.csv"
    note_name = "MSE"

    def group(self, job: Job) -> dict:
        net = str(job.get("decoder._target_", "mlp")).rsplit(".", 1)[-1]
        return {"dataset": job.dataset, "net": net}

    def describe(self, fields: dict) -> tuple[str, str]:
        return (
            f"{fields['dataset']}, {fields['net']} nets",
            "reconstruction MSE per pixel (training set: the paper's Figure 1; test set), AE vs VAE, by depth",
        )

    def label(self, job: Job) -> dict:
        return {"depth": job.get("decoder.depth", job.get("decoder.layers_per_scale"))}

    def columns(self, fields: dict, jobs: list[Job], reference: bool) -> list[Metric | Reference]:
        ae = lambda j: j.objective == "Autoencoder"  # noqa: E731
        vae = lambda j: j.objective != "Autoencoder"  # noqa: E731
        return [
            Metric("ae_train_mse", "AE train MSE", "train_set/mse", 4, where=ae),
            Metric("vae_train_mse", "VAE train MSE", "train_set/mse", 4, where=vae),
            Metric("ae_mse", "AE test MSE", "test/mse", 4, where=ae),
            Metric("vae_mse", "VAE test MSE", "test/mse", 4, where=vae),
            Metric("kl", "VAE KL", "test/kl", 2, where=vae),
            Metric("active_units", "VAE AU", "test/active_units", 1, where=vae),
            Metric("collapsed", "VAE collapsed", "test/collapsed_dims", 1, where=vae),
            Metric("gamma", "VAE γ", "test/gamma", 4, where=vae),
        ]

    def note_metric(self, fields: dict) -> str:
        return "test/mse"

    def figures(self, out: Path, tables: list[Table], jobs: list[Job]) -> None:
        plots.plot_tables(
            out / "report_collapse.png", tables, keys=("ae_train_mse", "vae_train_mse"), ylabel="training MSE per pixel"
        )


class HypersphericalSpec(TableSpec):
    """Davidson et al.'s MNIST table (REFERENCE.md §2), experiment=svae_mnist: rows the paper's d,
    columns N-VAE (prior=gauss) and S-VAE (prior=vmf), cells the importance-sampled NLL (= −LL),
    mean ± std over seeds, the paper's values beside them with ``--reference``."""

    kind = "svae"
    csv_file = "report_svae.csv"
    column_field = "column"  # gauss_nll, vmf_kl, …
    families = {"gauss": "N-VAE", "vmf": "S-VAE"}
    metrics = (("nll", "NLL"),)

    def group(self, job: Job) -> dict:
        return {"dataset": job.dataset, "d_convention": job.get("d_convention", "sphere")}

    def describe(self, fields: dict) -> tuple[str, str]:
        reading = "S^d in R^(d+1)" if fields["d_convention"] == "sphere" else "S^(d-1) in R^d"
        return f"{fields['dataset']}, S-VAE on {reading}", "test NLL = −LL (nats)"

    def label(self, job: Job) -> dict:
        return {"d": job.latent}

    def columns(self, fields: dict, jobs: list[Job], reference: bool) -> list[Metric | Reference]:
        columns = []
        for metric, title in self.metrics:
            for prior, family in self.families.items():
                where = lambda j, p=prior: j.prior == p  # noqa: E731
                columns.append(Metric(f"{prior}_{metric}", f"{family} {title}", f"test/{metric}", 2, where=where))
                if reference:
                    columns.append(Reference(f"{prior}_{metric}", "paper"))
        return columns

    def reference(self, fields: dict, label: dict, column: Metric) -> float | None:
        prior = column.key.split("_", 1)[0]
        return references.lookup(
            "svae.csv", dataset=fields["dataset"], metric=column.metric, latent=label["d"], prior=prior
        )

    def figures(self, out: Path, tables: list[Table], jobs: list[Job]) -> None:
        plots.plot_tables(out / "report_svae.png", tables, ylabel="test NLL (nats)")


class HypersphericalTermsSpec(HypersphericalSpec):
    """The same jobs' second table: −ELBO, reconstruction −log p(x|z) and KL (the paper's L[q],
    RE, KL with their signs as ours: −L[q], −RE)."""

    csv_file = "report_svae_terms.csv"
    metrics = (("neg_elbo", "−ELBO"), ("recon", "RE"), ("kl", "KL"))
    note_name = "−ELBO"

    def describe(self, fields: dict) -> tuple[str, str]:
        return super().describe(fields)[0], "test −ELBO, reconstruction and KL (nats)"

    def note_metric(self, fields: dict) -> str:
        return "test/neg_elbo"

    def figures(self, out: Path, tables: list[Table], jobs: list[Job]) -> None:
        pass


SPECS: tuple[TableSpec, ...] = (
    ImageNLLSpec(),
    TextSpec(),
    DensityGapSpec(),
    CollapseDepthSpec(),
    HypersphericalSpec(),
    HypersphericalTermsSpec(),
)
