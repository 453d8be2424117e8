"""Checkpoints that survive a kill, and a resume that survives a torn checkpoint.

Why: Lightning's ``TorchCheckpointIO`` writes through an fsspec transaction whose temporary file
lives in the system temp folder (``tempfile.mkstemp()``), then ``shutil.move``s it onto the
target. When that folder is on another file system (``/tmp`` as tmpfs, a scratch disk), the move
is a copy onto ``last.ckpt`` followed by a delete, so a kill or a full disk during the copy leaves
a torn ``last.ckpt`` behind, and nothing is fsynced. Resuming from it then fails inside Lightning's
load: ``OSError: [Errno 22] Invalid argument`` from fsspec when the file was cut short early (the zip
reader seeks before its start), "failed finding central directory" from torch otherwise.

``AtomicCheckpointIO`` writes next to the target and renames, so the target is always either the
previous complete file or the new complete file. ``choose_resume_checkpoint`` copes with torn
files written before it existed (or by another writer): it falls back to the newest readable
checkpoint of the folder and says which file it skipped and why.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import torch
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

from vae_lab.run_folder import TEMP_SUFFIX, atomic_write


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` that writes local checkpoints atomically and durably.

    ``L.Trainer(plugins=[AtomicCheckpointIO()])``: every ``trainer.save_checkpoint`` goes through
    the strategy's ``checkpoint_io`` (ModelCheckpoint's best and ``last.ckpt`` included; under DDP
    only rank 0 writes). Remote paths (``s3://`` …) keep Lightning's own writer.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        fs, local_path = url_to_fs(str(path))
        if storage_options is not None or not isinstance(fs, LocalFileSystem):
            return super().save_checkpoint(checkpoint, path, storage_options=storage_options)
        target = Path(local_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_torch_save(checkpoint, target)
        remove_stale_temp_files(target)


def atomic_torch_save(obj: Any, target: Path) -> None:
    """``torch.save`` through :func:`vae_lab.run_folder.atomic_write`: beside ``target``, fsync, rename.
    A hard kill can leave a hidden ``.<name>.<random>.tmp`` that no ``*.ckpt`` glob matches."""
    atomic_write(target, lambda f: torch.save(obj, f))


def remove_stale_temp_files(target: Path) -> None:
    """Remove temporary files of ``target`` that a killed earlier save left behind.

    Called right after a successful save: only one process writes a given checkpoint (rank 0 of
    the job that owns the run folder), so any temporary file of it still there is an orphan.
    """
    for temp in target.parent.glob(f".{target.name}.*{TEMP_SUFFIX}"):
        temp.unlink(missing_ok=True)


class UnreadableCheckpoint(ValueError):
    """A checkpoint file that cannot be read; ``reason`` is one short line."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"checkpoint {path} cannot be read ({reason})")
        self.path, self.reason = path, reason


def read_checkpoint_file(path: Path | str) -> dict:
    """The checkpoint as the resume reads it (``torch.load``, ``weights_only=True``, on the CPU),
    checked to be a Lightning checkpoint (has a ``state_dict``); ``UnreadableCheckpoint`` says why not."""
    path = Path(path)
    if not path.is_file():
        raise UnreadableCheckpoint(path, "missing" if not path.exists() else "not a file")
    if path.stat().st_size == 0:
        raise UnreadableCheckpoint(path, "truncated or corrupt: empty file")  # a full disk before the first byte
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torn zip: RuntimeError; empty: EOFError; garbage: UnpicklingError …
        message = _short_error(err)
        if message.startswith("Unsupported global"):  # a whole file, with a class torch will not unpickle
            raise UnreadableCheckpoint(path, f"weights_only=True refuses it: {message}") from None
        raise UnreadableCheckpoint(path, f"truncated or corrupt: {message}") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise UnreadableCheckpoint(path, "not a Lightning checkpoint (no 'state_dict')")
    return checkpoint


def is_loadable(path: Path | str) -> tuple[bool, str]:
    """Whether resuming could read this checkpoint, and if not, why (one short line).

    A full read costs as much as the resume's own, but it is the only check that catches every
    torn or corrupt file.
    """
    try:
        read_checkpoint_file(path)
    except UnreadableCheckpoint as err:
        return False, err.reason
    return True, ""


def _short_error(err: Exception) -> str:
    """The informative line of a torch.load error (its weights-only errors are paragraphs)."""
    message = str(err)
    if "WeightsUnpickler error:" in message:
        message = message.split("WeightsUnpickler error:", 1)[1]
        message = message.split(" was not an allowed global")[0]  # "Unsupported global: GLOBAL x.Y"
        return message.strip().splitlines()[0][:120]
    first = message.strip().splitlines()[0].split(". ")[0] if message.strip() else ""  # first sentence
    return f"{type(err).__name__}: {first[:120]}".rstrip(": ")


class NoLoadableCheckpoint(ValueError):
    """No checkpoint of the folder can be read: says which files failed and what to do."""

    def __init__(self, checkpoint_dir: Path, problems: list[str]):
        self.checkpoint_dir, self.problems = Path(checkpoint_dir), problems
        found = "; ".join(problems) if problems else "no *.ckpt files"
        super().__init__(
            f"no loadable checkpoint in {checkpoint_dir} ({found}); delete {checkpoint_dir} to start this job "
            "over, or resume=false to train from scratch in a new run folder"
        )


UNREADABLE_SUFFIX = ".unreadable"


def choose_resume_checkpoint(checkpoint_dir: Path, preferred: Path) -> tuple[Path, list[str]]:
    """The checkpoint to resume from: ``preferred`` (``last.ckpt``) when readable, else the newest
    readable ``*.ckpt`` of ``checkpoint_dir``; and one warning line per unreadable file.

    Falling back to ``best.ckpt`` is sound: a full Lightning checkpoint restores the loops
    (epoch, step) with the weights, so training continues from that point. The unreadable files
    skipped on the way are renamed ``<name>.unreadable`` (kept, not deleted): left in place, the
    restored ModelCheckpoint may not recognise ``last.ckpt`` as its own and would write
    ``last-v1.ckpt`` beside it, so every later resume would stumble on the torn file again.

    Raises ``NoLoadableCheckpoint`` (naming every file and why) when nothing is readable, and
    then touches nothing: which files to delete is the user's call.
    """
    checkpoint_dir, preferred = Path(checkpoint_dir), Path(preferred)
    others = [p for p in checkpoint_dir.glob("*.ckpt") if p.resolve() != preferred.resolve()]
    others.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    skipped: list[tuple[Path, str]] = []
    for candidate in [preferred, *others]:
        ok, reason = is_loadable(candidate)
        if ok:
            resuming = f"; resuming from {_show(candidate, checkpoint_dir)}"
            return candidate, [_set_aside(bad, why, checkpoint_dir) + resuming for bad, why in skipped]
        skipped.append((candidate, reason))
    raise NoLoadableCheckpoint(checkpoint_dir, [_describe(bad, why, checkpoint_dir) for bad, why in skipped])


def _describe(path: Path, reason: str, checkpoint_dir: Path) -> str:
    state = "is missing" if reason == "missing" else f"is unreadable ({reason})"
    return f"{_show(path, checkpoint_dir)} {state}"


def _set_aside(path: Path, reason: str, checkpoint_dir: Path) -> str:
    """Rename an unreadable checkpoint out of the ``*.ckpt`` namespace; the warning line says so."""
    if reason == "missing":
        return _describe(path, reason, checkpoint_dir)
    aside = path.with_name(path.name + UNREADABLE_SUFFIX)
    os.replace(path, aside)
    return f"{_describe(path, reason, checkpoint_dir)}, renamed {_show(aside, checkpoint_dir)}"


def _show(path: Path, checkpoint_dir: Path) -> str:
    """``checkpoints/last.ckpt``: the path as seen from the run folder, short enough for a log line."""
    with contextlib.suppress(ValueError):
        return str(path.relative_to(checkpoint_dir.parent))
    return str(path)
