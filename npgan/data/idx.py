"""Read and write IDX files, the format MNIST and Fashion-MNIST ship in.

An IDX file is a 4-byte magic number, one big-endian uint32 per dimension, and
then the array itself, big-endian, in C order::

    byte 0-1   0x00 0x00
    byte 2     dtype code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
               0x0D float32, 0x0E float64)
    byte 3     number of dimensions, ndim
    next       ndim x uint32 (big-endian): the size of each dimension
    rest       prod(dims) items of the dtype (big-endian)

The files are usually gzip-compressed (``train-images-idx3-ubyte.gz``).
:func:`read_idx` tells the two apart by their first bytes, not by the name, and
turns every way a file can be broken into an :class:`IDXError` that names the
file and what is wrong with it.

    >>> images = read_idx("train-images-idx3-ubyte.gz")   # (60000, 28, 28) uint8
    >>> write_idx("tiny-idx1-ubyte.gz", labels)            # gzip from the name
"""
import gzip as _gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

# IDX dtype code -> big-endian NumPy dtype.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
# NumPy dtype (native byte order) -> IDX dtype code.
IDX_CODES = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}

GZIP_MAGIC = b"\x1f\x8b"


class IDXError(ValueError):
    """An IDX file is missing its header, truncated, corrupt or of an unknown type."""


def read_idx(path):
    """Read an IDX file (raw or gzip-compressed) into a NumPy array.

    Gzip is detected from the file's first two bytes (``1f 8b``), so a raw file
    named ``.gz`` or a compressed file without the suffix both read correctly.

    Args:
        path: str or ``os.PathLike`` of the file.

    Returns:
        A writable array in native byte order with the shape and dtype the
        header declares (``uint8``, ``int8``, ``int16``, ``int32``,
        ``float32`` or ``float64``).

    Raises:
        IDXError: the file is empty, not gzip and not IDX, a corrupt or
            truncated gzip stream, has a bad magic number or dtype code, or its
            payload is not exactly the size the header promises.
        FileNotFoundError: there is no file at ``path``.
    """
    name = os.fspath(path)
    data = _read_bytes(name)
    dtype, shape, header_size = _parse_header(name, data)
    payload = memoryview(data)[header_size:]
    _check_payload_size(name, len(payload), dtype, shape)
    array = np.frombuffer(payload, dtype=dtype).reshape(shape)
    return array.astype(dtype.newbyteorder("="))  # a native, writable copy


def write_idx(path, array, gzip=None):
    """Write ``array`` as an IDX file.

    Args:
        path: str or ``os.PathLike`` of the file to write.
        array: array-like of dtype uint8, int8, int16, int32, float32 or
            float64 with 1 to 255 dimensions.
        gzip: compress the file; default ``None`` compresses when the name ends
            in ``.gz``.

    Raises:
        ValueError: the dtype has no IDX code, or the rank is out of range.
    """
    name = os.fspath(path)
    array = np.ascontiguousarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in IDX_CODES:
        known = ", ".join(str(d) for d in IDX_CODES)
        raise ValueError(f"{name}: IDX cannot store dtype {array.dtype} (it stores {known})")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"{name}: IDX stores 1 to 255 dimensions, got {array.ndim}")
    if gzip is None:
        gzip = name.endswith(".gz")
    header = bytes([0, 0, IDX_CODES[native], array.ndim])
    header += np.array(array.shape, dtype=">u4").tobytes()
    data = header + array.astype(IDX_DTYPES[IDX_CODES[native]]).tobytes()
    if gzip:
        data = _gzip.compress(data)
    Path(name).write_bytes(data)


def _read_bytes(name):
    """The file's contents, decompressed when they start with the gzip magic."""
    raw = Path(name).read_bytes()
    if not raw:
        raise IDXError(f"{name}: the file is empty (0 bytes)")
    if not raw.startswith(GZIP_MAGIC):
        if name.endswith(".gz") and not raw.startswith(b"\x00\x00"):
            raise IDXError(f"{name}: not a gzip file (first bytes {raw[:4].hex(' ')}, "
                           f"gzip starts with 1f 8b) and not a raw IDX file either")
        return raw
    try:
        data = _gzip.decompress(raw)
    except EOFError:
        raise IDXError(f"{name}: the gzip stream ends early after {len(raw)} bytes; "
                       f"the file is truncated (an interrupted download?)") from None
    except (_gzip.BadGzipFile, zlib.error, OSError) as err:
        raise IDXError(f"{name}: corrupt gzip data ({err})") from None
    if not data:
        raise IDXError(f"{name}: the gzip stream decompresses to 0 bytes")
    return data


def _parse_header(name, data):
    """Return ``(big-endian dtype, shape, header size in bytes)`` from the header."""
    if len(data) < 4:
        raise IDXError(f"{name}: only {len(data)} bytes, too short for the 4-byte "
                       f"IDX magic number; the file is truncated")
    zero1, zero2, code, ndim = data[:4]
    if zero1 != 0 or zero2 != 0:
        raise IDXError(f"{name}: bad magic number {data[:4].hex(' ')}; an IDX file "
                       f"starts with 00 00 <dtype code> <ndim>")
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X} ({IDX_DTYPES[c].newbyteorder('=')})" for c in IDX_DTYPES)
        raise IDXError(f"{name}: unknown IDX dtype code 0x{code:02X}; known codes are {known}")
    if ndim == 0:
        raise IDXError(f"{name}: the header declares 0 dimensions")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise IDXError(f"{name}: header declares {ndim} dimensions ({header_size} header "
                       f"bytes) but the file has only {len(data)} bytes; the file is truncated")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    return IDX_DTYPES[code], shape, header_size


def _check_payload_size(name, size, dtype, shape):
    """Raise IDXError unless the payload is exactly ``prod(shape)`` items."""
    expected = math.prod(shape) * dtype.itemsize
    if size == expected:
        return
    what = f"{'x'.join(map(str, shape))} {dtype.newbyteorder('=')}"
    problem = "the file is truncated" if size < expected else "the file has trailing data"
    raise IDXError(f"{name}: payload has {size} bytes, header promises {expected} "
                   f"({what}); {problem}")
