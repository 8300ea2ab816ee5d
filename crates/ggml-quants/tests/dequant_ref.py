"""Dequantizes raw ggml blocks with gguf-py, the reference of ggml-quants' tests/gguf_py.rs.

Usage: dequant_ref.py DIR TYPE...
Reads DIR/TYPE.bin (whole blocks of the ggml type TYPE, e.g. Q4_K), decodes them with
gguf.quants.dequantize and writes DIR/TYPE.f32 (little-endian float32). Prints the gguf version.
"""

import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType
from gguf.quants import dequantize


def main() -> None:
    folder = Path(sys.argv[1])
    for name in sys.argv[2:]:
        raw = np.fromfile(folder / f"{name}.bin", dtype=np.uint8)
        values = dequantize(raw, GGMLQuantizationType[name])
        np.ascontiguousarray(values, dtype="<f4").tofile(folder / f"{name}.f32")
    print(f"gguf {version('gguf')}, numpy {np.__version__}")


if __name__ == "__main__":
    main()
