"""Latent families: posterior q(z|x), prior p(z) and the true KL, one file each."""
