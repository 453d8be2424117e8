"""Latent families: posterior q(z|x), prior p(z) and divergence, one file each."""
