"""Data layer: lookup, checksums, clear errors, safe unpickling, index batching."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest
import torch

from tests.conftest import data_root, needs_real_data
from vae_lab.data import files, images
from vae_lab.data.datamodule import IndexBatches


def test_missing_file_names_the_file_and_both_remedies(tmp_path, monkeypatch):
    monkeypatch.setenv(files.NO_DOWNLOAD_ENV, "1")
    with pytest.raises(files.DataFileError) as err:
        images.load_mnist_static(root=tmp_path)
    message = str(err.value)
    assert "binarized_mnist/binarized_mnist_train.mat" in message
    assert str(tmp_path) in message
    assert files.ROOT_ENV in message and "data.root" in message  # remedy 1: point at the files
    assert "network" in message  # remedy 2: download


def test_root_lookup_order(tmp_path, monkeypatch):
    monkeypatch.setenv(files.ROOT_ENV, str(tmp_path / "env"))
    assert files.resolve_root("explicit") == files.Path("explicit")
    assert files.resolve_root(None) == tmp_path / "env"
    monkeypatch.delenv(files.ROOT_ENV)
    assert files.resolve_root(None) == files.Path("data")


@needs_real_data
def test_corrupted_file_fails_its_checksum(tmp_path):
    target = tmp_path / "ptb" / "ptb.valid.txt"
    target.parent.mkdir()
    shutil.copy(data_root() / "ptb" / "ptb.valid.txt", target)
    with open(target, "r+b") as f:
        f.seek(100)
        f.write(b"X")
    with pytest.raises(files.DataFileError, match="corrupted.*sha256"):
        files.fetch("ptb/ptb.valid.txt", tmp_path)


def test_frey_unpickler_refuses_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    payload = pickle.dumps([Evil()], protocol=0)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        images._NumpyOnlyUnpickler(__import__("io").BytesIO(payload), encoding="latin1").load()


@needs_real_data
def test_frey_pickle_converts_to_the_published_array(tmp_path):
    (tmp_path / "frey_faces").mkdir()
    shutil.copy(data_root() / "frey_faces" / "freyfaces.pkl", tmp_path / "frey_faces")
    array = images.frey_array(tmp_path)  # converted from the pickle, then cached as .npy
    assert array.shape == (1965, 560) and array.dtype == np.uint8
    assert files.fetch("frey_faces/freyfaces_uint8.npy", tmp_path)  # sha256 of the canonical .npy
    splits = images.load_frey(tmp_path)
    assert [len(splits.train), len(splits.valid), len(splits.test)] == [1565, 200, 200]
    assert splits.train.min() > 0 and splits.train.max() < 1  # bin centres (x + 0.5) / 256


@needs_real_data
def test_dynamic_mnist_protocol():
    a = images.load_mnist_dynamic(data_root())
    b = images.load_mnist_dynamic(data_root())
    assert [len(a.train), len(a.valid), len(a.test)] == [50_000, 10_000, 10_000]
    assert torch.equal(a.valid, b.valid) and torch.equal(a.test, b.test)  # binarised once, seeded
    assert set(a.valid.unique().tolist()) == {0.0, 1.0}
    assert len(a.train.unique()) > 2  # grey levels, re-binarised per batch


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_eval_batches_cover_each_example_once_across_ranks(world_size):
    data = torch.arange(1050).float().unsqueeze(1)
    seen, batch_ids = [], []
    for rank in range(world_size):
        loader = IndexBatches(data, 100, shuffle=False, rank=rank, world_size=world_size)
        batches = list(loader)
        assert len(batches) == len(loader)
        seen += [x for x, _ in batches]
        batch_ids += [i for _, i in batches]
    assert torch.equal(torch.cat(seen).squeeze(1).sort().values, data.squeeze(1))
    assert sorted(batch_ids) == list(range(11))  # same global batches as one process


def test_under_ddp_each_process_takes_its_share_of_the_single_process_batches_and_their_noise():
    from vae_lab.data.datamodule import dynamic_binarisation

    data = torch.rand(1050, 3)
    epoch = {"n": 0}

    def batches(rank=0, world_size=1, batch_size=100):
        loader = IndexBatches(
            data,
            batch_size,
            True,
            seed=1,
            epoch_fn=lambda: epoch["n"],
            rank=rank,
            world_size=world_size,
            transform=dynamic_binarisation,
        )
        return len(loader), [(x, index) for (x,), index in loader]  # training groups of one batch

    count, single = batches()
    for world_size in (2, 4):
        shares = [batches(rank, world_size) for rank in range(world_size)]
        # The batch size is the global one; the last batch (50) splits in 2, not in 4: left out.
        expected = [b for b in single if b[0].shape[0] % world_size == 0]
        assert all(n == len(expected) == len(got) for n, got in shares)
        for step, (x, index) in enumerate(expected):
            assert all(got[step][1] == index for _, got in shares)
            assert torch.equal(torch.cat([got[step][0] for _, got in shares]), x)  # binarisation noise too
    assert count == 11 and len(expected) == 10
    with pytest.raises(ValueError, match="global batch.*multiple of 4"):
        batches(0, 4, batch_size=90)
    epoch["n"] = 1
    assert not torch.equal(batches()[1][0][0], single[0][0])  # reshuffled per epoch


def test_dynamic_binarisation_resamples_each_epoch():
    from vae_lab.data.datamodule import dynamic_binarisation

    data = torch.full((200, 10), 0.5)
    epoch = {"n": 0}
    loader = IndexBatches(data, 200, True, epoch_fn=lambda: epoch["n"], transform=dynamic_binarisation)
    (a,), _ = next(iter(loader))  # a training group of one batch
    epoch["n"] = 1
    (b,), _ = next(iter(loader))
    assert set(a.unique().tolist()) == {0.0, 1.0} and not torch.equal(a, b)
    assert abs(a.mean().item() - 0.5) < 0.05


def test_grouped_training_batches_are_the_ungrouped_batches_in_the_same_order():
    from vae_lab.data.datamodule import BatchGroup, dynamic_binarisation

    data = torch.rand(1050, 6)

    def loader(steps_per_call, rank=0, world_size=1):
        return IndexBatches(
            data,
            100,
            True,
            seed=3,
            transform=dynamic_binarisation,
            steps_per_call=steps_per_call,
            rank=rank,
            world_size=world_size,
        )

    single = [(group[0], i) for group, i in loader(1)]  # 11 groups of one, the last of 50 examples
    assert all(isinstance(g, BatchGroup) and len(g) == 1 for g, _ in loader(1))
    grouped = list(loader(4))
    assert len(loader(4)) == len(grouped) == 3 and [len(g) for g, _ in grouped] == [4, 4, 3]
    assert all(isinstance(g, BatchGroup) for g, _ in grouped)
    assert [i for _, i in grouped] == [0, 4, 8]  # each group carries its first batch's index
    flat = [x for group, _ in grouped for x in group]
    assert len(flat) == len(single) and all(torch.equal(a, b) for a, (b, _) in zip(flat, single, strict=True))
    # Under DDP each process groups its shares of the 11 global batches (50 + 25 examples).
    assert [len(g) for g, _ in loader(4, rank=1, world_size=2)] == [4, 4, 3]
    # Evaluation batches are never grouped.
    assert len(IndexBatches(data, 100, False, steps_per_call=4)) == 11
    with pytest.raises(ValueError, match="steps_per_call=0"):
        IndexBatches(data, 100, True, steps_per_call=0)
