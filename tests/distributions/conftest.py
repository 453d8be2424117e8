import math

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """Many small tensor ops: intra-op threads only add synchronisation (badly so on a busy host)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def sphere_quadrature() -> tuple[torch.Tensor, torch.Tensor]:
    """Points on S² and weights: Gauss-Legendre in cos θ × trapezoid (spectral) in φ."""
    nodes, weights = np.polynomial.legendre.leggauss(200)
    n_phi = 400
    cos_t = torch.tensor(nodes)[:, None].expand(-1, n_phi)
    sin_t = torch.sqrt(1 - cos_t**2)
    phi = torch.linspace(0, 2 * math.pi, n_phi + 1, dtype=torch.float64)[:-1].expand_as(cos_t)
    points = torch.stack([sin_t * torch.cos(phi), sin_t * torch.sin(phi), cos_t], dim=-1)
    return points, torch.tensor(weights)[:, None].expand(-1, n_phi) * (2 * math.pi / n_phi)
