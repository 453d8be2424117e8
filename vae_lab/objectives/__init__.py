"""Objectives: what the training step minimises, given the batch's terms (one file each)."""

from vae_lab.objectives.base import Objective, ObjectiveOutput, Terms
from vae_lab.objectives.elbo import ELBO, FreeBitsELBO

__all__ = ["ELBO", "FreeBitsELBO", "Objective", "ObjectiveOutput", "Terms"]
