"""vae_lab: experiment framework for research on the latent spaces of variational autoencoders."""

__version__ = "0.1.0"
