"""Checkpoints survive a kill or a full disk mid-write; a resume skips torn files and says so."""

from __future__ import annotations

import datetime
import errno
import os
import shutil
import signal
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from vae_lab.checkpoints import (
    AtomicCheckpointIO,
    NoLoadableCheckpoint,
    atomic_torch_save,
    choose_resume_checkpoint,
    is_loadable,
)


class Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.mse_loss(self.net(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.mse_loss(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def loader() -> DataLoader:
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
    return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8)  # 4 batches per epoch


class RecordingIO(AtomicCheckpointIO):
    """Appends every path it saves to a log file (readable after DDP children have exited)."""

    def __init__(self, log: Path):
        super().__init__()
        self.log = log

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        super().save_checkpoint(checkpoint, path, storage_options)
        with open(self.log, "a") as f:
            f.write(f"{path}\n")


class CountSteps(L.Callback):
    def __init__(self):
        self.steps = 0

    def on_train_batch_end(self, *args):
        self.steps += 1


def fit(run: Path, max_epochs: int = 2, ckpt_path: str | None = None, **trainer_args) -> L.Trainer:
    io = RecordingIO(run / "saves.log")
    checkpoint = ModelCheckpoint(dirpath=run / "checkpoints", filename="best", monitor="val_loss", save_last=True)
    trainer = L.Trainer(
        **({"accelerator": "cpu", "devices": 1} | trainer_args),
        max_epochs=max_epochs,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[checkpoint, CountSteps()],
        plugins=[io],
        default_root_dir=run,
    )
    assert trainer.strategy.checkpoint_io is io  # the plugin is what the strategy saves with
    trainer.fit(Tiny(), train_dataloaders=loader(), val_dataloaders=loader(), ckpt_path=ckpt_path)
    return trainer


def files_in(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}  # hidden files included


@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> Path:
    """A run folder with best.ckpt and last.ckpt written through AtomicCheckpointIO."""
    run = tmp_path_factory.mktemp("run")
    fit(run)
    return run


def test_trainer_saves_best_and_last_through_the_plugin(good_run):
    saved = {Path(p).name for p in (good_run / "saves.log").read_text().split()}
    assert saved == {"best.ckpt", "last.ckpt"}  # save_last saves again (not a copy) through the plugin
    assert files_in(good_run / "checkpoints") == {"best.ckpt", "last.ckpt"}  # no temporary files left
    for name in saved:
        assert is_loadable(good_run / "checkpoints" / name) == (True, "")
        assert torch.load(good_run / "checkpoints" / name, weights_only=True)["global_step"] == 8


def test_ddp_strategy_saves_with_the_plugin(tmp_path):
    io = AtomicCheckpointIO()
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", plugins=[io], logger=False)
    assert trainer.strategy.checkpoint_io is io


@pytest.mark.slow
def test_ddp_run_writes_loadable_checkpoints_from_rank_zero(tmp_path):
    fit(tmp_path, max_epochs=1, devices=2, strategy="ddp_spawn")
    saved = {Path(p).name for p in (tmp_path / "saves.log").read_text().split()}
    assert saved == {"best.ckpt", "last.ckpt", ".temp.ckpt"}  # .temp.ckpt: how ddp_spawn hands back the weights
    assert files_in(tmp_path / "checkpoints") == {"best.ckpt", "last.ckpt"}
    assert all(is_loadable(tmp_path / "checkpoints" / name)[0] for name in ("best.ckpt", "last.ckpt"))


def half_written_save(data: bytes, then):
    """A torch.save that writes the first half of ``data`` (a real checkpoint), then calls ``then()``."""

    def save(obj, f):
        f.write(data[: len(data) // 2])
        f.flush()
        then()

    return save


def copy_good_checkpoint(good_run: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(good_run / "checkpoints" / "last.ckpt", folder / "last.ckpt"))


def test_full_disk_mid_write_keeps_the_previous_file_and_no_temp(good_run, tmp_path, monkeypatch):
    target = copy_good_checkpoint(good_run, tmp_path / "checkpoints")
    before = target.read_bytes()

    def disk_full():
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", half_written_save(before, disk_full))
    with pytest.raises(OSError, match="No space left"):
        AtomicCheckpointIO().save_checkpoint({"state_dict": {}}, target)
    assert target.read_bytes() == before
    assert files_in(target.parent) == {"last.ckpt"}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork to kill a writer mid-write")
def test_kill_mid_write_keeps_the_previous_file(good_run, tmp_path, monkeypatch):
    target = copy_good_checkpoint(good_run, tmp_path / "checkpoints")
    before = target.read_bytes()
    monkeypatch.setattr(torch, "save", half_written_save(before, lambda: os.kill(os.getpid(), signal.SIGKILL)))
    pid = os.fork()
    if pid == 0:  # the writer: SIGKILLed halfway through the write, nothing runs after it
        try:
            atomic_torch_save({"state_dict": {}}, target)
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL

    assert target.read_bytes() == before and is_loadable(target)[0]
    (orphan,) = files_in(target.parent) - {"last.ckpt"}
    assert orphan.startswith(".last.ckpt.") and orphan.endswith(".tmp")  # hidden, and not *.ckpt
    assert choose_resume_checkpoint(target.parent, target) == (target, [])

    monkeypatch.undo()  # the next good save replaces the file and removes the orphan
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(2)}}, target)
    assert files_in(target.parent) == {"last.ckpt"}
    assert torch.equal(torch.load(target, weights_only=True)["state_dict"]["w"], torch.ones(2))


def test_remote_paths_use_lightnings_writer(tmp_path):
    io = AtomicCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}}, "memory://vae_lab_test/last.ckpt")
    assert torch.equal(io.load_checkpoint("memory://vae_lab_test/last.ckpt")["state_dict"]["w"], torch.zeros(3))
    io.remove_checkpoint("memory://vae_lab_test/last.ckpt")


def torn_folder(good_run: Path, folder: Path) -> Path:
    """checkpoints/ with a good best.ckpt and, written after it, a last.ckpt cut in half."""
    folder.mkdir(parents=True)
    shutil.copy(good_run / "checkpoints" / "best.ckpt", folder / "best.ckpt")
    data = (good_run / "checkpoints" / "last.ckpt").read_bytes()
    (folder / "last.ckpt").write_bytes(data[: len(data) // 2])
    os.utime(folder / "best.ckpt", (1_000_000, 1_000_000))  # older than last.ckpt
    return folder


def test_truncated_and_other_unreadable_files_say_why(good_run, tmp_path):
    folder = torn_folder(good_run, tmp_path / "checkpoints")
    ok, reason = is_loadable(folder / "last.ckpt")
    assert not ok and reason.startswith("truncated or corrupt: ")
    (tmp_path / "short.ckpt").write_bytes((folder / "best.ckpt").read_bytes()[:1000])  # Errno 22 in Lightning's load
    assert is_loadable(tmp_path / "short.ckpt")[1].startswith("truncated or corrupt: ")
    (tmp_path / "empty.ckpt").write_bytes(b"")  # a full disk before the first byte
    assert is_loadable(tmp_path / "empty.ckpt") == (False, "truncated or corrupt: empty file")
    torch.save({"weights": torch.ones(1)}, tmp_path / "plain.ckpt")
    assert is_loadable(tmp_path / "plain.ckpt") == (False, "not a Lightning checkpoint (no 'state_dict')")
    assert is_loadable(tmp_path / "absent.ckpt") == (False, "missing")
    torch.save({"state_dict": {}, "when": datetime.date(2020, 1, 1)}, tmp_path / "object.ckpt")
    assert is_loadable(tmp_path / "object.ckpt") == (
        False,
        "weights_only=True refuses it: Unsupported global: GLOBAL datetime.date",
    )


def test_resume_falls_back_to_the_newest_readable_checkpoint(good_run, tmp_path):
    folder = torn_folder(good_run, tmp_path / "checkpoints")
    chosen, warnings = choose_resume_checkpoint(folder, folder / "last.ckpt")
    assert chosen == folder / "best.ckpt"
    (warning,) = warnings
    assert warning.startswith("checkpoints/last.ckpt is unreadable (truncated or corrupt: ")
    assert warning.endswith(", renamed checkpoints/last.ckpt.unreadable; resuming from checkpoints/best.ckpt")
    assert files_in(folder) == {"best.ckpt", "last.ckpt.unreadable"}  # kept, out of the *.ckpt names

    shutil.copy(folder / "best.ckpt", folder / "epoch=1.ckpt")  # newer than best.ckpt: preferred over it
    assert choose_resume_checkpoint(folder, folder / "last.ckpt") == (
        folder / "epoch=1.ckpt",
        ["checkpoints/last.ckpt is missing; resuming from checkpoints/epoch=1.ckpt"],
    )


def test_lightning_resumes_its_loops_from_the_fallback(tmp_path):
    fit(tmp_path, max_epochs=2)  # in place: the checkpoints' ModelCheckpoint state names this folder
    folder = tmp_path / "checkpoints"
    data = (folder / "last.ckpt").read_bytes()
    (folder / "last.ckpt").write_bytes(data[: len(data) // 2])
    chosen, _ = choose_resume_checkpoint(folder, folder / "last.ckpt")
    restored_step = torch.load(chosen, weights_only=True)["global_step"]
    trainer = fit(tmp_path, max_epochs=3, ckpt_path=str(chosen))
    steps_run = next(c.steps for c in trainer.callbacks if isinstance(c, CountSteps))
    assert restored_step > 0 and (trainer.global_step, steps_run) == (12, 12 - restored_step)  # continued
    assert files_in(folder) == {"best.ckpt", "last.ckpt", "last.ckpt.unreadable"}  # a fresh last.ckpt
    assert torch.load(folder / "last.ckpt", weights_only=True)["global_step"] == 12


def test_nothing_readable_stops_with_the_remedy(good_run, tmp_path):
    folder = torn_folder(good_run, tmp_path / "checkpoints")
    (folder / "best.ckpt").write_bytes(b"\0" * 100)
    with pytest.raises(NoLoadableCheckpoint) as raised:
        choose_resume_checkpoint(folder, folder / "last.ckpt")
    assert files_in(folder) == {"best.ckpt", "last.ckpt"}  # nothing renamed: deleting is the user's call
    problems = raised.value.problems
    assert len(problems) == 2 and all(" is unreadable (truncated or corrupt: " in p for p in problems)
    message = str(raised.value)
    assert message.startswith(f"no loadable checkpoint in {folder} (checkpoints/last.ckpt is unreadable (truncated")
    assert f"delete {folder} to start this job over" in message and "resume=false" in message
    assert isinstance(raised.value, ValueError)  # train.py reports ValueErrors of bad input in one line
