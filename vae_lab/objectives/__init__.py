"""Objectives: what the training step minimises, given the batch's terms (one file each)."""

from vae_lab.objectives.autoencoder import Autoencoder
from vae_lab.objectives.base import Objective, ObjectiveOutput, Terms
from vae_lab.objectives.density_gap import DensityGapELBO
from vae_lab.objectives.elbo import ELBO, FreeBitsELBO

__all__ = ["Autoencoder", "DensityGapELBO", "ELBO", "FreeBitsELBO", "Objective", "ObjectiveOutput", "Terms"]
