"""PGN sources as streams of game-aligned chunks: plain, zstd, bzip2 or gzip files, or stdin.

The compression is recognised by the file's first bytes, not its name, so a misnamed file or a
compressed stream on stdin (``zstdcat`` is not needed) both work. Nothing is held in memory beyond
one chunk and the game that straddles its end.

Chunks end just before a line that opens a game's tags after a blank line (``\\n\\n[``), so every
chunk holds whole games and the way a stream is cut does not change what is read. A compressed
stream that is truncated or corrupt ends the source: the games before the damage are kept, the game
it cut is counted as ``truncated``, and the error is reported.
"""

from __future__ import annotations

import bz2
import gzip
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import TranscendError

READ_SIZE = 1 << 22
"""Bytes read from a source at a time (compressed bytes for a compressed source)."""
CHUNK_SIZE = 1 << 22
"""Decompressed bytes gathered before a chunk is cut at the next game boundary."""
MAX_GAME_BYTES = 1 << 26
"""A stretch this long without a game boundary is cut anyway, so memory stays bounded on garbage."""

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_BZ2_MAGIC = b"BZh"
_GZIP_MAGIC = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"
_BOUNDARY = b"\n\n["


class DataError(TranscendError):
    """Input that cannot be read at all (a missing file, no games), or a directory that is not a dataset."""


@dataclass
class DamagedInput(Exception):
    """A compressed stream that ended early or is corrupt; ``games_lost`` games were cut by it."""

    message: str
    games_lost: int = 0

    def __str__(self) -> str:
        return self.message


def check_sources(paths: list[str]) -> None:
    """Fail before any work when a source is missing (``-`` is stdin, allowed once)."""
    if paths.count("-") > 1:
        raise DataError("stdin ('-') can be read only once")
    for path in paths:
        if path != "-" and not Path(path).is_file():
            raise DataError(f"{path}: no such file")


def read_blocks(path: str, read_size: int = READ_SIZE) -> Iterator[bytes]:
    """The decompressed bytes of a source, block by block; raises DamagedInput on a damaged stream."""
    if path == "-":
        yield from _decompressed(sys.stdin.buffer, read_size, path)
        return
    with open(path, "rb") as raw:
        yield from _decompressed(raw, read_size, path)


def _decompressed(raw: BinaryIO, read_size: int, name: str) -> Iterator[bytes]:
    magic = raw.peek(4)[:4] if hasattr(raw, "peek") else b""
    if magic.startswith(_ZSTD_MAGIC):
        yield from _zstd_blocks(raw, read_size, name)
        return
    if magic.startswith(_BZ2_MAGIC) or magic.startswith(_GZIP_MAGIC):
        stream = bz2.BZ2File(raw, "rb") if magic.startswith(_BZ2_MAGIC) else gzip.GzipFile(fileobj=raw, mode="rb")
        try:
            while block := stream.read1(read_size):  # read1: what was decoded before damage comes out
                yield block
        except (EOFError, OSError, zlib.error) as exc:
            raise DamagedInput(f"{name}: damaged compressed stream ({exc})") from None
        return
    while block := raw.read(read_size):
        yield block


def _zstd_blocks(raw: BinaryIO, read_size: int, name: str) -> Iterator[bytes]:
    """zstd frames one after another; a frame left incomplete at the end means a truncated file.

    (python-zstandard's stream reader ends silently on a truncated frame, so frames are followed
    here with decompression objects, which say whether the frame reached its end.)
    """
    import zstandard

    dctx = zstandard.ZstdDecompressor()
    frame = dctx.decompressobj()
    in_frame = False
    piece = 1 << 14  # compressed bytes per call: bounds what one call inflates to, and what corruption loses
    try:
        while data := raw.read(read_size):
            for i in range(0, len(data), piece):
                pending = data[i : i + piece]
                while pending:
                    in_frame = True
                    out = frame.decompress(pending)
                    if out:
                        yield out
                    pending = b""
                    if frame.eof:
                        pending = frame.unused_data
                        frame = dctx.decompressobj()
                        in_frame = False
    except zstandard.ZstdError as exc:
        raise DamagedInput(f"{name}: corrupt zstd data ({exc})") from None
    if in_frame:
        raise DamagedInput(f"{name}: truncated zstd stream (it ends inside a frame)")


def iter_chunks(blocks: Iterator[bytes], chunk_size: int = CHUNK_SIZE,
                max_game_bytes: int = MAX_GAME_BYTES) -> Iterator[bytes]:
    """Regroup ``blocks`` into chunks of whole games (see the module doc).

    Line endings are normalised to ``\\n`` and a leading byte-order mark is dropped. When ``blocks``
    raises DamagedInput, the game being read is dropped and counted in the re-raised error.
    """
    parts: list[bytes] = []
    size = 0
    want = chunk_size  # grows geometrically while no boundary is found, so joining stays linear
    held = b""  # a trailing \r whose \n may open the next block
    first = True
    try:
        for block in blocks:
            if first:
                block = block[len(_BOM):] if block.startswith(_BOM) else block
                first = False
            if held:
                block, held = held + block, b""
            if b"\r" in block:
                if block.endswith(b"\r"):
                    block, held = block[:-1], b"\r"
                block = block.replace(b"\r\n", b"\n")
            parts.append(block)
            size += len(block)
            if size < want:
                continue
            buf = b"".join(parts)
            start = 0
            while len(buf) - start >= chunk_size:  # as many chunks of about chunk_size as there are
                cut = buf.rfind(_BOUNDARY, start, start + chunk_size)
                if cut < 0:
                    cut = buf.find(_BOUNDARY, start + chunk_size)  # a game longer than a chunk
                if cut < 0:
                    break
                yield buf[start : cut + 2]
                start = cut + 2
            if start == 0 and size >= max_game_bytes:
                yield buf
                start = size
            rest = buf[start:] if start else buf
            parts, size = ([rest] if rest else []), len(rest)
            want = chunk_size if size < chunk_size else min(2 * size, max_game_bytes)
    except DamagedInput as exc:
        buf = b"".join(parts)
        cut = buf.rfind(_BOUNDARY)
        if cut >= 0:
            yield buf[: cut + 2]
            buf = buf[cut + 2 :]
        exc.games_lost = 1 if buf.strip() else 0
        raise
    tail = b"".join(parts) + held
    if tail.strip():
        yield tail
