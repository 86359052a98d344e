"""File system paths as the C API takes them."""

from __future__ import annotations

import os
from typing import Union

#: A file system path as the API takes it.
PathArg = Union[str, "os.PathLike[str]", bytes]


def path_bytes(path: PathArg) -> bytes:
    """A path as the C API wants it (file-system encoding)."""
    return os.fsencode(path)
