"""What the report calls each prior, in one place: table headers, row labels and plot legends."""

from __future__ import annotations

# `prior=` choice -> name; this order is the tables' column order (other priors follow by name).
PRIOR_NAMES = {
    "gauss": "Gaussian",
    "vamp": "VampPrior",
    "vmf": "VonMisesFisher",
    "power_spherical": "PowerSpherical",
}
# The VampPrior paper calls N(0, I) the "standard" prior; its tables keep the paper's words.
VAMPPRIOR_PAPER_NAMES = PRIOR_NAMES | {"gauss": "standard"}
# Run folders without Hydra's record of choices: the latent family's class says which prior it was.
PRIOR_CLASSES = {
    "GaussianLatent": "gauss",
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
