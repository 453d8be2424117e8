"""vae_lab: experiment framework for research on the latent spaces of variational autoencoders."""

__version__ = "0.1.0"


def load(path, map_location="cpu"):
    """The trained model saved in checkpoint ``path``, rebuilt from the config it carries (eval mode)."""
    from vae_lab.restore import load as _load  # lazy: `import vae_lab` stays light

    return _load(path, map_location)
