"""darknet's text files (``.data``, ``.names``, image lists) read as darknet
reads them: ``utils.c:fgetl`` for lines, ``option_list.c:read_data_cfg`` for
``key=value`` files, ``get_labels`` for class names. Shared by the
diagnosis, :func:`yolo_io.check_data` and :func:`yolo_io.detect`."""

from __future__ import annotations

import errno
import os
import stat

__all__ = ["fgetl_lines", "read_data_file", "read_names", "read_text_file"]

_MAX_TEXT_BYTES = 64 << 20  # as the core's limit for a .cfg


def read_text_file(path: str | os.PathLike[str]) -> bytes:
    """The bytes of a small text file (.data, .names, the cfg again): refuses,
    without blocking, a FIFO, a device or a socket, and a file over 64 MiB."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        # checked before os.fdopen, which would name a folder by its descriptor ("3: ...")
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a FIFO, device or socket)",
                          os.fspath(path))
        with os.fdopen(fd, "rb") as f:
            fd = -1
            try:  # not read(64 MiB + 1): that allocates 64 MiB for a file of 30 bytes
                limit = _MAX_TEXT_BYTES + 1
                data = f.read(min(st.st_size + 1, limit))
                while len(data) < limit:
                    more = f.read(min(1 << 20, limit - len(data)))
                    if not more:
                        break
                    data += more
            except OSError as err:  # e.g. EIO from /proc/self/mem: say which file
                raise OSError(err.errno, err.strerror, os.fspath(path)) from None
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > _MAX_TEXT_BYTES:
        raise OSError(errno.EFBIG, "more than 64 MiB: not a darknet text file", os.fspath(path))
    return data



def fgetl_lines(data: bytes) -> list[tuple[bytes, int]]:
    """The lines ``utils.c:fgetl`` returns for a file of ``data``, each with
    the 1-based line number where it starts. fgetl removes the ``\\n`` and a
    ``\\r`` just before it (so ``\\r\\n`` files read fine), but a last line
    without ``\\n`` keeps a final ``\\r`` (and a ``\\r`` before its last
    character cuts that character off); a line holding a NUL byte is read up
    to the NUL and joined with the next line (fgets reads on, strlen stops at
    the NUL); an empty file has no lines, a blank line is an empty name."""
    if b"\0" in data:
        return _fgetl_exact(data)
    parts = data.split(b"\n")
    terminated = parts[-1] == b""
    if terminated:
        parts.pop()
    if b"\r" not in data:
        return [(p, i) for i, p in enumerate(parts, 1)]
    out = []
    for i, raw in enumerate(parts, 1):
        if i < len(parts) or terminated:
            out.append((raw[:-1] if raw.endswith(b"\r") else raw, i))
        else:  # no "\n": line[curr-2] == 0x0d is the character before the last
            out.append((raw[:-2] if len(raw) >= 2 and raw[-2] == 13 else raw, i))
    return out


def _fgetl_exact(data: bytes) -> list[tuple[bytes, int]]:
    """fgetl() step by step (its fgets calls and buffer growth), for data
    holding NUL bytes."""
    n, pos, eof = len(data), 0, False
    out: list[tuple[bytes, int]] = []
    number, counted = 1, 0  # the line number at byte `counted`, counted forward once

    def fgets(count: int) -> bytes | None:  # at most count characters, through "\n"
        nonlocal pos, eof
        if pos >= n:
            eof = True
            return None
        end = data.find(b"\n", pos, pos + count)
        if end >= 0:
            chunk = data[pos:end + 1]
        elif n - pos < count:
            chunk, eof = data[pos:], True
        else:
            chunk = data[pos:pos + count]
        pos += len(chunk)
        return chunk

    while not eof:
        start = pos
        size = 512
        chunk = fgets(size - 1)
        if chunk is None:
            break
        line = chunk.split(b"\0", 1)[0]
        while (not line or line[-1] != 10) and not eof:
            if len(line) == size - 1:
                size *= 2
            more = fgets(size - len(line) - 1)
            if more is None:
                break
            line = (line + more).split(b"\0", 1)[0]
        if len(line) >= 2 and line[-2] == 13:
            line = line[:-2]
        elif line and line[-1] == 10:
            line = line[:-1]
        number += data.count(b"\n", counted, start)
        counted = start
        out.append((line, number))
    return out


def read_data_file(path: str) -> tuple[dict[str, tuple[str | None, int]], list[tuple[int, str]],
                                        list[tuple[str, int]], dict[str, str]]:
    """``option_list.c:read_data_cfg``: each fgetl line with every space, tab,
    CR and LF deleted (``strip``), lines starting with ``#`` or ``;`` skipped;
    ``read_option`` splits at the first ``=``; a line ending in ``=`` is an
    error darknet prints and skips; a line without ``=`` becomes a key with no
    value; ``option_find`` takes the first line of a key. Returns (options:
    key -> (value or None, line), the lines darknet refuses, every (key, line)
    in order, the raw text of each key's first line)."""
    data = read_text_file(path)
    options: dict[str, tuple[str | None, int]] = {}
    refused: list[tuple[int, str]] = []
    keys: list[tuple[str, int]] = []
    raw_lines: dict[str, str] = {}
    for raw, number in fgetl_lines(data):
        line = raw.translate(None, b" \t\r\n")
        if not line or line[:1] in (b"#", b";"):
            continue
        text = os.fsdecode(line)
        if text.endswith("=") and text.index("=") == len(text) - 1:
            refused.append((number, text))
            continue
        key, sep, value = text.partition("=")
        keys.append((key, number))
        if key not in options:
            options[key] = (value if sep else None, number)
            raw_lines[key] = os.fsdecode(raw)
    return options, refused, keys, raw_lines




def read_names(path: str | os.PathLike[str]) -> list[str]:
    """The class names of a ``.names`` file as darknet's ``get_labels()``
    reads them (``get_paths``: every :func:`fgetl_lines` line, blank ones
    too), decoded as UTF-8 (bytes that are not: U+FFFD)."""
    return [line.decode("utf-8", "replace") for line, _ in fgetl_lines(read_text_file(path))]
