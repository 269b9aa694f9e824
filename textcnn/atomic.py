"""Atomic file writes: readers (and a restart after a crash) see the whole new file or the old one.

The bytes go to a temporary file in the target's directory, are fsynced, then ``os.replace``d onto
the target, which is atomic on one filesystem. Checkpoints and the shared tokenizer use it.
The temporary file is created with mode 0666 less the umask, as ``open`` would create the target:
``tempfile.mkstemp``'s 0600 would leave checkpoints that no other user (a service account) can read.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, BinaryIO, Optional, TextIO, TypeVar

from textcnn.errors import UserInputError

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
T = TypeVar("T")


def write_atomic(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Create ``path``'s directory, let ``write`` fill a temporary file beside it, then rename it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_atomic(path) as file:
        write(file)


def text_file_atomic(path: Path) -> contextlib.AbstractContextManager[TextIO]:
    """A UTF-8 text file to write a piece at a time (a page streamed as predictions come); see :func:`file_atomic`."""
    return file_atomic(path, "w", "utf-8")


@contextlib.contextmanager
def file_atomic(path: Path, mode: str = "wb", encoding: Optional[str] = None) -> Iterator[IO]:
    """A file that is a temporary file beside ``path`` until the block ends, then fsynced and renamed
    onto it; on an error it is removed and ``path`` keeps what it held."""
    handle, temporary = _create_beside(Path(path))
    try:
        with os.fdopen(handle, mode, encoding=encoding) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def path_atomic(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that takes a file name (the ONNX exporter, the
    quantizer): renamed onto ``path`` when the block ends; on an error removed, so ``path`` keeps
    what it held (a good export is never left truncated by a full disk)."""
    path = Path(path)
    handle, temporary = _create_beside(path)
    os.close(handle)
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def refuse_overwriting_inputs(output: Path, inputs: list, option: str) -> None:
    """An output that is one of the command's inputs would replace the user's data with the result."""
    for given in inputs:
        if given and given != "-" and Path(given).exists() and Path(output).exists() \
                and os.path.samefile(given, output):
            raise UserInputError(f"{option} {output} is also an input of this command; writing it would replace "
                                 "your data: choose another output path")


def _create_beside(path: Path) -> tuple[int, Path]:
    """A new, empty, uniquely named file in ``path``'s directory, opened for writing."""
    return _beside(path, lambda name: os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))


def _beside(path: Path, create: Callable[[Path], T]) -> tuple[T, Path]:
    """``create`` run on a new temporary name in ``path``'s directory, retried while the name is taken."""
    for _ in range(100):
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return create(temporary), temporary
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(path.parent))


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, lambda file: file.write(text.encode("utf-8")))


def unwritable(directory: Path, error: OSError, setting: str) -> UserInputError:
    """The one-line error for output that cannot be written to ``directory``, naming ``setting`` as the fix."""
    if error.errno in NO_SPACE:
        fix = f"free some space there, or set {setting} to a directory on another disk"
    else:
        fix = f"make it writable, or set {setting} to a directory you can write"
    return UserInputError(f"cannot write to {directory} ({error.strerror or error}); {fix}")


def check_writable(directory: Path, setting: str) -> None:
    """Find out now, not after training, whether ``directory`` can be created and written: a file is
    created and removed in it, or in the nearest folder above it that exists (nothing is created)."""
    directory = Path(directory).absolute()
    existing = next(path for path in (directory, *directory.parents) if path.exists())
    try:
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(existing))
        handle, probe = _create_beside(existing / "write-check")
        os.close(handle)
        probe.unlink()
    except OSError as error:
        raise unwritable(directory, error, setting) from None
