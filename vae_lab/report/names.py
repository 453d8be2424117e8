"""What the report calls each prior, in one place: table headers, row labels and plot legends."""

from __future__ import annotations

# `prior=` choice -> name; this order is the tables' column order (other priors follow by name).
PRIOR_NAMES = {
    "gauss": "Gaussian",
    "bn_gauss": "BN-Gaussian",
    "delta_gauss": "δ-Gaussian",
    "vamp": "VampPrior",
    "vmf": "VonMisesFisher",
    "power_spherical": "PowerSpherical",
}
# The VampPrior paper calls N(0, I) the "standard" prior; its tables keep the paper's words.
VAMPPRIOR_PAPER_NAMES = PRIOR_NAMES | {"gauss": "standard"}
# Run folders without Hydra's record of choices: the latent family's class says which prior it was.
PRIOR_CLASSES = {
    "GaussianLatent": "gauss",
    "BatchNormGaussianLatent": "bn_gauss",
    "DeltaGaussianLatent": "delta_gauss",
    "VampPriorLatent": "vamp",
    "VonMisesFisherLatent": "vmf",
    "PowerSphericalLatent": "power_spherical",
}


def prior_from_target(target: str) -> str:
    """``vae_lab.latents.vamp.VampPriorLatent`` -> ``vamp`` (an unknown class keeps its name)."""
    name = str(target).rsplit(".", 1)[-1]
    return PRIOR_CLASSES.get(name, name)


def prior_name(choice: str, kappa: float | None = None, names: dict[str, str] = PRIOR_NAMES) -> str:
    """``vmf`` with a fixed κ of 80 -> ``VonMisesFisher κ=80``; a learned κ (None) is not shown."""
    return names.get(choice, choice) + (f" κ={kappa:g}" if kappa is not None else "")


def prior_order(choice: str, kappa: float | None = None) -> tuple:
    known = list(PRIOR_NAMES)
    return (known.index(choice) if choice in known else len(known), choice, kappa is not None, kappa or 0)


def collapse_model_name(objective: str, prior: str, settings) -> str:
    """The density-gap paper's row names: ``DG-VAE (|b| 32)``, ``BN-VAE (γ 0.7)``, ``FB (4)``.

    ``settings(key)`` reads the job's config (``objective.beta`` …). Parts combine: the density
    gap on the sphere is ``DG-vMF (|b| 32)``, free bits on a BN-VAE ``BN-VAE (γ 0.7) + FB (4)``.
    """
    parts = []
    if prior == "bn_gauss":
        parts.append(f"BN-VAE (γ {settings('prior.gamma'):g})")
    elif prior == "delta_gauss":
        parts.append(f"δ-VAE ({settings('prior.delta'):g})")
    elif prior == "vmf" and objective != "DensityGapELBO":
        kappa = settings("prior.kappa")
        parts.append("vMF-VAE" + (f" (κ {kappa:g})" if kappa is not None else " (learned κ)"))
    elif prior not in ("gauss", "vmf"):
        parts.append(prior_name(prior))
    if objective == "DensityGapELBO":
        family = "DG-vMF" if prior == "vmf" else "DG-VAE"
        parts.append(f"{family} (|b| {settings('objective.aggregate')})")
    elif objective == "FreeBitsELBO":
        mode = "" if settings("objective.mode") == "example" else " batch"
        parts.append(f"FB{mode} ({settings('objective.target'):g})")
    beta, schedule = settings("objective.beta"), settings("objective.schedule")
    if objective != "DensityGapELBO" and beta is not None and beta != 1:
        parts.append(f"β-VAE ({beta:g})")
    if schedule == "cyclic":
        parts.append("cyclic")
    if settings("decoder.skip_z"):
        parts.append("skip-VAE")
    return " + ".join(parts) or "VAE"
