#!/usr/bin/env python3
"""Generate the Python gRPC stubs for ``api.proto``: the one place this is done.

Usage::

    python gen_stubs.py [PROTO_DIR] [--out OUT_DIR]

``PROTO_DIR`` defaults to ``../../proto`` relative to this file (the repo's
shared ``proto/`` directory); ``OUT_DIR`` defaults to ``src/`` next to this
file. It runs, with the current interpreter (which must have
``grpcio-tools`` installed)::

    python -m grpc_tools.protoc -I PROTO_DIR \\
        --python_out=OUT_DIR --pyi_out=OUT_DIR --grpc_python_out=OUT_DIR \\
        PROTO_DIR/api.proto

``api.proto`` has no ``package``, so the output is the top-level modules
``api_pb2.py``, ``api_pb2.pyi`` and ``api_pb2_grpc.py``. Only ``api.proto`` is
compiled: ``google/protobuf/*`` comes from the ``protobuf`` runtime and any
``google/api`` / ``google/rpc`` import from ``googleapis-common-protos``;
generating local copies of those would register them twice.
``python -m grpc_tools.protoc`` adds grpcio-tools' bundled well-known-type
protos to the include path by itself.

The generated files are not committed (see the repo's .gitignore). The local
venv (scripts/setup-python) and the Docker build both call this script.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_PROTO_DIR = HERE.parent.parent / "proto"
DEFAULT_OUT_DIR = HERE / "src"
PROTO_FILE = "api.proto"


def generate(proto_dir: Path, out_dir: Path) -> None:
    """Compile ``proto_dir/api.proto`` into ``out_dir``; raise on failure."""
    proto_dir = proto_dir.resolve()
    out_dir = out_dir.resolve()
    proto = proto_dir / PROTO_FILE
    if not proto.is_file():
        raise FileNotFoundError(f"{proto} not found")
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{proto_dir}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        str(proto),
    ]
    subprocess.run(cmd, check=True)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "proto_dir",
        nargs="?",
        type=Path,
        default=DEFAULT_PROTO_DIR,
        help=f"directory holding {PROTO_FILE} (default: {DEFAULT_PROTO_DIR})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT_DIR,
        help=f"output directory (default: {DEFAULT_OUT_DIR})",
    )
    args = parser.parse_args(argv)
    try:
        generate(args.proto_dir, args.out)
    except (FileNotFoundError, subprocess.CalledProcessError) as exc:
        print(f"gen_stubs: {exc}", file=sys.stderr)
        return 1
    print(f"gen_stubs: generated api_pb2*.py from {args.proto_dir.resolve() / PROTO_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
