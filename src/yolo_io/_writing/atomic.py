"""The one way yolo_io writes a file: the core's atomic writer
(:func:`atomic_file`: a temporary file in the target's folder, fsynced, renamed
over the target, the folder fsynced), and the checks every writer makes before
it writes a byte (:func:`resolve_target`, :func:`refuse_inputs`,
:func:`refuse_mapped_arrays`)."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from .. import _core
from .._base.errors import OutputIsInputError
from .._base.paths import PathArg, fs_path
from .._model.network import Network

__all__ = ["WriterStream", "atomic_file", "network_inputs", "refuse_inputs",
           "refuse_mapped_arrays", "replace_folder", "resolve_target"]


def resolve_target(path: PathArg) -> str:
    """The file a save replaces: a symbolic link's target (written through,
    as darknet's ``fopen`` would), and only a regular file or a new name; a
    device, FIFO, socket or directory is refused (OSError)."""
    target = fs_path(path)  # str, bytes or os.PathLike, a name in any encoding
    if not target:
        raise FileNotFoundError(errno.ENOENT, "an empty path is no file name", target)
    if target.endswith(os.sep):
        raise IsADirectoryError(errno.EISDIR, "a name ending in / names a folder, not a file",
                                target)
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return target
    if stat.S_ISLNK(st.st_mode):
        target = os.path.realpath(target)
        try:
            st = os.stat(target)
        except FileNotFoundError:
            return target  # a dangling link: its target is created
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), target)
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, "not a regular file (a device, FIFO or socket), which a "
                      "save would replace", target)
    return target


@contextlib.contextmanager
def atomic_file(target: str) -> Iterator[_core.WeightsWriter]:
    """The core's atomic writer of ``target`` (a temporary file in its folder):
    renamed over ``target`` when the block ends, removed when the block or
    the commit raises, so ``target`` is never partly written."""
    writer = _core.WeightsWriter(target)
    try:
        yield writer
        writer.commit()
    except BaseException:
        writer.abort()
        raise


Inputs = Iterable[tuple[str, "str | os.PathLike[str] | None"]]


def refuse_inputs(output: PathArg, inputs: Inputs) -> None:
    """Raises :class:`OutputIsInputError` when ``output`` is the same file as
    one of ``inputs`` (``(what, path)`` pairs, ``what`` naming the input in
    the message, e.g. ``"the input CFG"``): the same device and inode by
    ``os.stat``, so through symbolic links and hard links and whatever the
    names. An output or input that does not exist (or a path that is not a
    file name, such as cfg text) is no match. Every writer calls this before
    it writes a byte."""
    try:
        out = os.stat(output)
    except (OSError, ValueError):
        return
    for what, path in inputs:
        if path is None:
            continue
        try:
            st = os.stat(path)
        except (OSError, ValueError, TypeError):
            continue
        if (st.st_dev, st.st_ino) == (out.st_dev, out.st_ino):
            raise _refusal(output, what, os.fsdecode(path),
                           "writing it would replace the file being read; write to another "
                           "name (and rename it over the old file yourself, once nothing "
                           "reads it)")


def _refusal(output: PathArg, what: str, given: str, why: str) -> OutputIsInputError:
    """The error for an ``output`` that is the file ``given`` (``what``),
    naming ``given`` too when it is another name of that file."""
    shown = os.fsdecode(output)
    also = "" if os.path.abspath(shown) == os.path.abspath(given) else f" ({given})"
    return OutputIsInputError(f"{shown} is {what}{also}: {why}", output=shown, input=given)


def _mapped_file(array: object) -> _core.Mapping | None:
    """The core's mapping a loaded parameter array is a view of (its base is
    a read-only array of the whole mapping, whose base is the mapping), else
    None."""
    base = getattr(array, "base", None)
    while isinstance(base, np.ndarray):
        base = base.base
    return base if isinstance(base, _core.Mapping) else None


def refuse_mapped_arrays(output: PathArg, source: object) -> None:
    """Raises :class:`OutputIsInputError` when an array of ``source`` (a dict
    of arrays, or of dicts of arrays) is a view of the file ``output`` names
    (by device and inode): replacing that file would cut the only copy of
    the bytes being written."""
    try:
        out = os.stat(output)
    except (OSError, ValueError):
        return
    if not isinstance(source, Mapping):
        return
    for value in source.values():
        for array in value.values() if isinstance(value, Mapping) else (value,):
            mapping = _mapped_file(array)
            if mapping is not None and mapping.file_id == (out.st_dev, out.st_ino):
                raise _refusal(output, "the file the arrays are mapped from", mapping.path,
                               "writing it would replace the only copy of their bytes; write "
                               "to another name (or copy the arrays first)")


def network_inputs(net: Network) -> list[tuple[str, str]]:
    """The files a writer of ``net`` reads: its weights (or safetensors) file
    and its cfg file (none for cfg text or a safetensors file's own cfg).
    No writer replaces one of them, not even with a file of the same kind: a
    save that fails half-way or writes something else would lose the only
    copy (write to a new name, then rename it over the old one yourself)."""
    inputs = [("the network's weights file", net.path)]
    if net.config.path != "<string>" and not net.config.path.endswith(" (its cfg)"):
        inputs.append(("the network's cfg", net.config.path))  # not cfg text or an export's
    return inputs


class WriterStream(io.RawIOBase):
    """The core's atomic writer as a write-only, unseekable stream for
    ``np.savez`` (zipfile writes such a stream with data descriptors)."""

    def __init__(self, writer: _core.WeightsWriter) -> None:
        super().__init__()
        self._writer = writer

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._writer.write(view)
        return view.nbytes


def _fsync(path: str, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_folder(built: str, target: str, trash: str) -> None:
    """Puts the folder ``built`` (written by another library, e.g. a SavedModel
    by TensorFlow, beside ``target``) at ``target``: every file in it and the
    folders fsynced, an earlier folder at ``target`` moved to ``trash`` (in the
    same folder; the caller removes it), ``built`` renamed into place, the
    parent fsynced. A folder has no atomic replacement on POSIX: between the
    two renames ``target`` is briefly absent, never partly written."""
    for root, _, files in os.walk(built):
        for name in files:
            _fsync(os.path.join(root, name), os.O_RDONLY)
        _fsync(root, os.O_RDONLY | os.O_DIRECTORY)
    if os.path.lexists(target):
        os.rename(target, trash)
    os.rename(built, target)
    _fsync(os.path.dirname(os.path.abspath(target)), os.O_RDONLY | os.O_DIRECTORY)
