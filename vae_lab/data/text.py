"""Sentence corpora (PTB, Yahoo, Yelp) as in-memory token tensors, batched by length buckets.

A split is a :class:`RaggedTokens`: every sentence ``<bos> w_1 … w_n <eos>`` stored back to back
in one flat id tensor plus offsets, so memory is the token count, not N × longest. A batch is
one vectorised gather into a ``(B, T)`` tensor padded with ``PAD = 0``; the padding mask is
``x != PAD`` and nothing else is needed to read a batch. Batches group sentences of similar
length so little compute is spent on padding.

Token counting (perplexity): the end token is predicted and counted, the start token is only
conditioned on and not counted, padding is neither (:func:`count_predicted_tokens`).
"""

from __future__ import annotations

import gzip
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from vae_lab.data.datamodule import IndexBatches, TensorDataModule
from vae_lab.data.files import FILES, DataFileError, fetch, resolve_root

log = logging.getLogger("vae_lab")

# Fixed ids; words start at FIRST_WORD. PAD and BOS are inputs only, never predicted, so the
# softmax covers ids EOS.. (class = id − NUM_INPUT_ONLY): a uniform decoder has perplexity V.
PAD, BOS, EOS, UNK = 0, 1, 2, 3
NUM_INPUT_ONLY = 2
FIRST_WORD = 4


@dataclass
class Vocabulary:
    """Word list of a corpus; ``words[i]`` is the word of id ``FIRST_WORD + i``."""

    words: list[str]
    unk_token: str = "<unk>"

    def __post_init__(self):
        self.index = {w: FIRST_WORD + i for i, w in enumerate(self.words)}
        self.index[self.unk_token] = UNK

    @property
    def num_classes(self) -> int:
        """Size of the output softmax: end token, unknown token and the words."""
        return len(self.words) + FIRST_WORD - NUM_INPUT_ONLY

    @classmethod
    def from_sentences(cls, sentences: Iterable[list[str]], size: int, unk_token: str) -> Vocabulary:
        """The ``size − 2`` most frequent words (ties alphabetical), so that num_classes == size."""
        counts = Counter(w for s in sentences for w in s)
        counts.pop(unk_token, None)
        ranked = sorted(counts, key=lambda w: (-counts[w], w))
        wanted = size - (FIRST_WORD - NUM_INPUT_ONLY)
        if len(ranked) < wanted:
            raise DataFileError(
                f"the training split has {len(ranked) + 2} distinct outputs (words + {unk_token} + end "
                f"token), fewer than data.vocab_size={size}; set data.vocab_size={len(ranked) + 2}"
            )
        return cls(ranked[:wanted], unk_token)

    def encode(self, sentence: list[str]) -> list[int]:
        return [BOS, *(self.index.get(w, UNK) for w in sentence), EOS]

    def decode(self, ids: Iterable[int]) -> str:
        """Words of one id sequence, up to the end token; the start token and padding are dropped."""
        specials = {UNK: self.unk_token}
        out = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i in (PAD, BOS):
                continue
            out.append(specials.get(i) or self.words[i - FIRST_WORD])
        return " ".join(out)


class RaggedTokens:
    """Variable-length id sequences in one flat tensor; ``ragged[index]`` is a padded (B, T) batch."""

    def __init__(self, flat: torch.Tensor, offsets: torch.Tensor, lengths: torch.Tensor):
        self.flat, self.offsets, self.lengths = flat, offsets, lengths

    @classmethod
    def from_lists(cls, sequences: list[list[int]]) -> RaggedTokens:
        lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
        offsets = torch.cumsum(lengths, 0) - lengths
        flat = torch.tensor([i for s in sequences for i in s], dtype=torch.long)
        return cls(flat, offsets, lengths)

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def device(self) -> torch.device:
        return self.flat.device

    def to(self, device) -> RaggedTokens:
        return RaggedTokens(self.flat.to(device), self.offsets.to(device), self.lengths.to(device))

    def __getitem__(self, index) -> RaggedTokens | torch.Tensor:
        if isinstance(index, slice):  # a sub-corpus (limit_* options), still ragged
            return RaggedTokens(self.flat, self.offsets[index], self.lengths[index])
        lengths = self.lengths[index]
        steps = torch.arange(int(lengths.max()), device=self.flat.device)
        inside = steps < lengths[:, None]
        positions = (self.offsets[index][:, None] + steps).clamp(max=len(self.flat) - 1)
        return torch.where(inside, self.flat[positions], PAD)  # (B, T)


def count_predicted_tokens(x: torch.Tensor) -> torch.Tensor:
    """Tokens a language model predicts per sentence (B,): words and the end token, not start/pad."""
    return (x[..., 1:] != PAD).sum(-1)


def read_sentences(path: Path) -> list[list[str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [line.split() for line in f]


def locate(relative_path: str, root=None) -> Path:
    """Verified path of a registered file; an unregistered one is used as placed, with a warning."""
    if relative_path in FILES:
        return fetch(relative_path, root)
    path = resolve_root(root) / relative_path
    if not path.exists():
        raise DataFileError(
            f"data file {relative_path} missing; expected at {path} (data root "
            f"{resolve_root(root).resolve()}). It has no registered checksum or public download "
            f"location: put the file there yourself (set data.root=<dir> or $VAE_LAB_DATA)."
        )
    log.warning("data file %s has no registered sha256; using it unverified", path)
    return path


@dataclass
class TextSplits:
    train: RaggedTokens
    valid: RaggedTokens
    test: RaggedTokens
    vocabulary: Vocabulary
    image_shape: None = None  # not images: the image media callback skips this data


def load_text_corpus(
    root=None,
    folder: str = "ptb",
    pattern: str = "ptb.{split}.txt",
    vocab_size: int = 10000,
    unk_token="<unk>",
) -> TextSplits:
    """Sentence-per-line corpus; the vocabulary is built from the training split."""
    sentences = {s: read_sentences(locate(f"{folder}/{pattern.format(split=s)}", root)) for s in SPLITS}
    vocabulary = Vocabulary.from_sentences(sentences["train"], vocab_size, unk_token)
    encoded = {s: RaggedTokens.from_lists([vocabulary.encode(x) for x in v]) for s, v in sentences.items()}
    return TextSplits(encoded["train"], encoded["valid"], encoded["test"], vocabulary)


SPLITS = ("train", "valid", "test")


class BucketBatches(IndexBatches):
    """``IndexBatches`` over ragged sentences, each batch drawn from sentences of similar length.

    Training: a fresh seeded permutation per epoch is stably sorted by length (ties stay in
    random order), cut into batches, and the batch order shuffled; under DDP each process keeps
    its share of every batch, as :class:`IndexBatches` does. Evaluation: the length-sorted order
    cut into batches, dealt round-robin as whole batches with their global index, exactly as
    :class:`IndexBatches` does.
    """

    def _all_batches(self) -> list[torch.Tensor]:
        lengths = self.data.lengths.cpu()
        if not self.shuffle:
            return list(torch.argsort(lengths, stable=True).split(self.batch_size))
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch_fn())
        order = torch.randperm(len(lengths), generator=g)
        order = order[torch.argsort(lengths[order], stable=True)]
        batches = order.split(self.batch_size)
        return [batches[i] for i in torch.randperm(len(batches), generator=g)]

    def _batches(self) -> list[tuple[int, torch.Tensor]]:
        batches = self._all_batches()
        if self.shuffle:
            return self._shareable(batches)
        return list(enumerate(batches))[self.rank :: self.world_size]


class TextDataModule(TensorDataModule):
    """``TensorDataModule`` for sentence corpora: ragged splits, length-bucketed batches."""

    @property
    def vocabulary(self) -> Vocabulary:
        return self.splits.vocabulary

    def train_dataloader(self):
        rank, world = self._distribution()
        return BucketBatches(
            self.splits.train,
            self.batch_size,
            True,
            self.seed,
            self._epoch,
            rank=rank,
            world_size=world,
            steps_per_call=self.steps_per_call,
        )

    def _eval_loader(self, data: RaggedTokens) -> BucketBatches:
        rank, world = self._distribution()
        return BucketBatches(data, self.eval_batch_size, shuffle=False, rank=rank, world_size=world)
