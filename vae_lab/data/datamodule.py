"""In-memory datasets batched by index: no per-item Python in the hot path.

The whole split lives in one tensor (on the training device once Lightning knows it); a batch is
one fancy-index ``data[indices]``. Under DDP the configured training batch size is the global
one: every process draws the single-process batches (and their binarisation noise) and keeps its
equal share of each, so N processes take the same optimiser steps on the same examples as one
(the gradients are averaged over the shares). Evaluation batches are whole batches of the
single-process order, dealt round-robin, so each example is evaluated exactly once and with the
same per-batch random stream as in one process.

The training loader yields :class:`BatchGroup` s of ``steps_per_call`` K consecutive batches
(K = 1: a group of one), and the model takes one optimiser step per batch of the group: K > 1
gives the same batches, noise and updates as K = 1, with one pass through Lightning's per-batch
machinery (loop bookkeeping, hooks, progress bar) per K steps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice

import lightning as L
import torch

from vae_lab.data.images import Splits


def check_global_batch(batch_size: int, world_size: int) -> None:
    """The training batch size is the global one: it must split into equal shares."""
    if batch_size % world_size:
        multiple = batch_size - batch_size % world_size or world_size
        raise ValueError(
            f"data.module.batch_size={batch_size} is the global batch, split over the {world_size} "
            f"processes: it must be a multiple of {world_size} (e.g. {multiple})"
        )


class BatchGroup(list):
    """Consecutive training batches for one ``training_step``, which steps through them in order."""


class IndexBatches:
    """Iterable of ``(x, global_batch_index)`` from an in-memory tensor ``data (N, …)``.

    Training (``shuffle``): ``(BatchGroup([x₁ … x_K]), index of x₁)`` with K = ``steps_per_call``
    instead, the last group of an epoch holding what is left.
    """

    def __init__(
        self,
        data: torch.Tensor,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        epoch_fn: Callable[[], int] = lambda: 0,
        rank: int = 0,
        world_size: int = 1,
        transform: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
        steps_per_call: int = 1,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}: must be a positive integer")
        if shuffle:
            check_global_batch(batch_size, world_size)
        if steps_per_call < 1:
            raise ValueError(f"steps_per_call={steps_per_call}: must be a positive integer (1 = one batch per call)")
        self.data, self.batch_size, self.shuffle = data, batch_size, shuffle
        self.seed, self.epoch_fn, self.rank, self.world_size = seed, epoch_fn, rank, world_size
        self.transform = transform
        self.grouped = shuffle  # evaluation batches are never grouped
        self.group = steps_per_call if shuffle else 1

    def _batches(self) -> list[tuple[int, torch.Tensor]]:
        """The batches this process draws, as (global batch index, example indices): training,
        every batch of a fresh seeded permutation per epoch (the process keeps its share of each
        in :meth:`_draw`); evaluation, whole batches dealt round-robin."""
        n = len(self.data)
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch_fn())
            return self._shareable(torch.randperm(n, generator=g).split(self.batch_size))
        batches = list(enumerate(torch.arange(n).split(self.batch_size)))
        return batches[self.rank :: self.world_size]

    def _shareable(self, batches) -> list[tuple[int, torch.Tensor]]:
        """Under multi-process training a batch (the partial last one) that does not split into
        equal shares is left out: unequal shares would weight examples unequally in the averaged
        gradient."""
        return [(i, batch) for i, batch in enumerate(batches) if len(batch) % self.world_size == 0]

    def __len__(self) -> int:
        return -(-self._batch_count() // self.group)

    def _batch_count(self) -> int:
        n, size = len(self.data), self.batch_size
        if self.shuffle:
            return n // size + (n % size > 0 and n % size % self.world_size == 0)
        return len(range(self.rank, -(-n // size), self.world_size))

    def __iter__(self) -> Iterator[tuple[torch.Tensor | BatchGroup, int]]:
        batches = self._draw()
        if not self.grouped:
            yield from batches
            return
        while chunk := list(islice(batches, self.group)):
            yield BatchGroup(x for x, _ in chunk), chunk[0][1]

    def _draw(self) -> Iterator[tuple[torch.Tensor, int]]:
        """The batches one by one; a group draws its batches (and their noise) in this order."""
        device = self.data.device
        if self.transform is not None:
            generator = torch.Generator(device=device)
            generator.manual_seed(self.seed * 7_919 + self.epoch_fn() * 104_729 + 1)  # one stream for all processes
        share = self.shuffle and self.world_size > 1
        for batch_index, index in self._batches():
            x = self.data[index.to(device)]  # text: padded to the global batch's longest sentence
            if self.transform is not None:
                x = self.transform(x, generator)
            yield (x.chunk(self.world_size)[self.rank] if share else x), batch_index


def dynamic_binarisation(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Re-sample binary pixels from grey levels every time a training batch is drawn.

    ``rand < p`` is a Bernoulli(p) draw; it is ~3× faster than ``torch.bernoulli`` on the CPU,
    where the per-batch draw otherwise costs a tenth of a training step.
    """
    return (torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) < x).to(x.dtype)


class TensorDataModule(L.LightningDataModule):
    """Holds train/valid/test tensors from ``loader(root=...)`` and serves index batches."""

    def __init__(
        self,
        loader: Callable[..., Splits],
        root: str | None = None,
        batch_size: int = 100,
        eval_batch_size: int = 100,
        dynamic_binarization: bool = False,
        seed: int = 0,
        limit_train: int | None = None,
        limit_valid: int | None = None,
        limit_test: int | None = None,
        to_device: bool = True,
        steps_per_call: int = 1,
    ):
        super().__init__()
        self.loader, self.root = loader, root
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.dynamic_binarization = dynamic_binarization
        self.seed = seed
        self.limits = {"train": limit_train, "valid": limit_valid, "test": limit_test}
        self.to_device = to_device
        self.steps_per_call = steps_per_call
        self.splits: Splits | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.splits is not None:
            return
        splits = self.loader(root=self.root)
        device = self.trainer.strategy.root_device if (self.trainer and self.to_device) else torch.device("cpu")
        for name, limit in self.limits.items():
            tensor = getattr(splits, name)
            if limit is not None:
                tensor = tensor[:limit]  # small slices for tests and debugging
            setattr(splits, name, tensor.to(device))
        self.splits = splits

    @property
    def image_shape(self) -> tuple[int, int]:
        return self.splits.image_shape

    def _distribution(self) -> tuple[int, int]:
        if self.trainer is None:
            return 0, 1
        return self.trainer.global_rank, self.trainer.world_size

    def _epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else 0

    def train_dataloader(self):
        rank, world = self._distribution()
        return IndexBatches(
            self.splits.train,
            self.batch_size,
            shuffle=True,
            seed=self.seed,
            epoch_fn=self._epoch,
            rank=rank,
            world_size=world,
            transform=dynamic_binarisation if self.dynamic_binarization else None,
            steps_per_call=self.steps_per_call,
        )

    def _eval_loader(self, data: torch.Tensor) -> IndexBatches:
        rank, world = self._distribution()
        return IndexBatches(data, self.eval_batch_size, shuffle=False, rank=rank, world_size=world)

    def val_dataloader(self):
        return self._eval_loader(self.splits.valid)

    def test_dataloader(self):
        return self._eval_loader(self.splits.test)

    def train_set_dataloader(self):
        """The training set in evaluation order, for its reconstruction error (``eval.train_set``);
        dynamically binarised data is binarised once with a fixed seed, as valid and test are."""
        data = self.splits.train
        if self.dynamic_binarization:
            data = dynamic_binarisation(data, torch.Generator(device=data.device).manual_seed(self.seed + 1))
        return self._eval_loader(data)
