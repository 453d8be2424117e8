"""Bag-of-words corpora in the NVDM ``.feat`` format (Miao et al. 2016) as dense count tensors.

Each line is ``LABEL id:count id:count …`` with 1-based word ids; the label is dropped, as in
the NVDM loader. 20 Newsgroups ships only train and test: the validation split here is a seeded
random 1000 documents held out of *train* (Xu & Durrett's code instead draws its dev set from
test, which leaks test documents into model selection). Empty documents are dropped, as there.
"""

from __future__ import annotations

import numpy as np
import torch

from vae_lab.data.files import fetch
from vae_lab.data.images import Splits


def read_feat(path, vocab_size: int) -> torch.Tensor:
    """float32 counts (N, vocab_size) of the non-empty documents of a ``.feat`` file."""
    with open(path, encoding="utf-8") as f:
        documents = [line.split(maxsplit=1)[1] for line in f if ":" in line]  # drop label, empties
    pairs_per_document = torch.tensor([d.count(":") for d in documents])
    # All "id:count" pairs of the file parsed in one go (C loops, not per-pair Python).
    pairs = np.array(" ".join(documents).replace(":", " ").split(), dtype=np.int64).reshape(-1, 2)
    words = torch.from_numpy(pairs[:, 0] - 1)
    if words.min() < 0 or words.max() >= vocab_size:
        raise ValueError(f"{path}: word ids must lie in 1..{vocab_size}, found {int(words.max()) + 1}")
    rows = torch.repeat_interleave(torch.arange(len(documents)), pairs_per_document)
    dense = torch.zeros(len(documents), vocab_size)
    dense.index_put_((rows, words), torch.from_numpy(pairs[:, 1]).float(), accumulate=True)
    return dense


def load_20newsgroups(root=None, vocab_size: int = 2000, valid_size: int = 1000, split_seed: int = 0) -> Splits:
    """20NG (NVDM format, vocabulary 2000): seeded train/valid split of train.feat, test.feat."""
    train_all = read_feat(fetch("20newsgroups/train.feat", root), vocab_size)
    test = read_feat(fetch("20newsgroups/test.feat", root), vocab_size)
    order = torch.from_numpy(np.random.default_rng(split_seed).permutation(len(train_all)))
    valid, train = train_all[order[:valid_size]], train_all[order[valid_size:]]
    return Splits(train, valid, test, image_shape=None)


def count_words(x: torch.Tensor) -> torch.Tensor:
    """Words per document (the perplexity denominator of a bag of words)."""
    return x.sum(-1)
