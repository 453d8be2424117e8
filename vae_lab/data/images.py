"""Image datasets as in-memory tensors: MNIST (dynamic / static), Frey Faces, Fashion-MNIST, synthetic.

Each loader returns a :class:`Splits` of float tensors ``(N, D)`` in [0, 1] (binary data: {0, 1};
8-bit data: the bin centres ``(x + 0.5) / 256``), plus the image shape for plots.
"""

from __future__ import annotations

import gzip
import io
import pickle
from dataclasses import dataclass

import numpy as np
import torch

from vae_lab.data.files import DataFileError, fetch, resolve_root


@dataclass
class Splits:
    train: torch.Tensor  # (N_train, D)
    valid: torch.Tensor  # (N_valid, D)
    test: torch.Tensor  # (N_test, D)
    image_shape: tuple[int, int]


def read_idx_images(path) -> np.ndarray:
    """uint8 (N, rows*cols) from an idx3 file (.gz or raw), without torchvision."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    magic, n, rows, cols = np.frombuffer(raw[:16], dtype=">u4")
    if magic != 0x803:
        raise DataFileError(f"{path} is not an idx3 image file (magic {magic:#x}, expected 0x803)")
    return np.frombuffer(raw[16:], dtype=np.uint8).reshape(int(n), int(rows) * int(cols))


def _seeded_permutation(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).permutation(n)


def _binarise_once(x: torch.Tensor, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.bernoulli(x, generator=generator)


def load_mnist_continuous(root=None, split_seed: int = 0, folder="mnist") -> Splits:
    """Grey-scale MNIST (or ``folder="fashion_mnist"``), pixels / 255 in [0, 1]: the 50k / 10k
    seeded split of the 60k training set, and the 10k test set."""
    train_all = read_idx_images(fetch(f"{folder}/train-images-idx3-ubyte.gz", root))
    test = read_idx_images(fetch(f"{folder}/t10k-images-idx3-ubyte.gz", root))
    order = _seeded_permutation(len(train_all), split_seed)
    to_unit = lambda a: torch.from_numpy(a.astype(np.float32) / 255.0)  # noqa: E731
    return Splits(to_unit(train_all[order[:50_000]]), to_unit(train_all[order[50_000:]]), to_unit(test), (28, 28))


def load_mnist_dynamic(root=None, split_seed: int = 0, binarise_seed: int = 1, folder="mnist") -> Splits:
    """Dynamic MNIST: 50k train / 10k valid split of the 60k set with a fixed seed.

    Train stays grey-scale (the data loader re-binarises every batch); valid and test are
    binarised once with a fixed seed so every evaluation sees the same bits.
    """
    grey = load_mnist_continuous(root, split_seed, folder)
    return Splits(
        train=grey.train,
        valid=_binarise_once(grey.valid, binarise_seed),
        test=_binarise_once(grey.test, binarise_seed + 1),
        image_shape=(28, 28),
    )


def load_fashion_mnist(root=None, split_seed: int = 0, binarise_seed: int = 1) -> Splits:
    """Fashion-MNIST with the same protocol as dynamic MNIST (50k/10k/10k, dynamic binarisation)."""
    return load_mnist_dynamic(root, split_seed, binarise_seed, folder="fashion_mnist")


def _read_mat_x(path) -> np.ndarray:
    from scipy.io import loadmat  # MATLAB v5 reader; plain data, no code is executed

    return np.ascontiguousarray(loadmat(path)["X"], dtype=np.uint8)


def load_mnist_static(root=None) -> Splits:
    """Larochelle's statically binarised MNIST, 50k / 10k / 10k."""
    split = {
        s: _read_mat_x(fetch(f"binarized_mnist/binarized_mnist_{s}.mat", root)) for s in ("train", "valid", "test")
    }
    as_float = lambda a: torch.from_numpy(a.astype(np.float32))  # noqa: E731
    return Splits(as_float(split["train"]), as_float(split["valid"]), as_float(split["test"]), (28, 28))


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain numpy arrays only; any other global in the stream is refused."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data pickle")
        if module == "numpy.core.multiarray":
            module = "numpy._core.multiarray" if hasattr(np, "_core") else module
        return super().find_class(module, name)


def frey_array(root=None) -> np.ndarray:
    """uint8 (1965, 560). Reads the .npy when present, else converts the pickle once (restricted)."""
    npy = resolve_root(root) / "frey_faces/freyfaces_uint8.npy"
    if npy.exists():
        return np.load(fetch("frey_faces/freyfaces_uint8.npy", root), allow_pickle=False)
    pkl = fetch("frey_faces/freyfaces.pkl", root)
    obj = _NumpyOnlyUnpickler(io.BytesIO(pkl.read_bytes()), encoding="latin1").load()
    array = np.ascontiguousarray(obj[0], dtype=np.uint8)
    np.save(npy, array, allow_pickle=False)
    return array


def load_frey(root=None, split_seed: int = 0) -> Splits:
    """Frey Faces 28×20, 8-bit, bin centres (x + 0.5)/256, seeded 1565 / 200 / 200 split."""
    x = torch.from_numpy((frey_array(root).astype(np.float32) + 0.5) / 256.0)
    order = torch.from_numpy(_seeded_permutation(len(x), split_seed))
    x = x[order]
    return Splits(x[:1565], x[1565:1765], x[1765:], (28, 20))


def load_frey_continuous(root=None, split_seed: int = 0) -> Splits:
    """Frey Faces as continuous data: pixels / 255 in [0, 1], the same seeded split as ``load_frey``."""
    x = torch.from_numpy(frey_array(root).astype(np.float32) / 255.0)
    x = x[torch.from_numpy(_seeded_permutation(len(x), split_seed))]
    return Splits(x[:1565], x[1565:1765], x[1765:], (28, 20))


def load_synthetic(root=None, n_train=2000, n_valid=500, n_test=500, dim=64, latent=4, seed=0) -> Splits:
    """Binary data from a random linear-sigmoid model: fast, offline, for tests (``root`` unused)."""
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(latent, dim, generator=g) * 3.0
    n = n_train + n_valid + n_test
    probs = torch.sigmoid(torch.randn(n, latent, generator=g) @ weight)
    x = torch.bernoulli(probs, generator=g)
    side = int(dim**0.5)
    shape = (side, dim // side) if side * (dim // side) == dim else (1, dim)
    return Splits(x[:n_train], x[n_train : n_train + n_valid], x[n_train + n_valid :], shape)
