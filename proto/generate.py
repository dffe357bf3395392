"""Regenerate the committed Python stubs from the .proto files.

    python proto/generate.py            # rewrite the stubs in place
    python proto/generate.py --out DIR  # write them under DIR instead (the staleness test does)

Paths inside the stubs are relative to the repository root (`-I .`), so the modules import as
`proto.lightfm.v2025_9.*`; a bare `lightfm.*` would collide with the LightFM library.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTO_FILES = ("proto/lightfm/v2025_9/recommender.proto",)
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def generate(out_dir: Path = REPO_ROOT) -> list[Path]:
    """Write the stubs of every file in PROTO_FILES under `out_dir`; returns the files written."""
    well_known = resources.files("grpc_tools") / "_proto"
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for relative in PROTO_FILES:
        code = protoc.main(
            [
                "grpc_tools.protoc",
                f"-I{REPO_ROOT}",
                f"-I{well_known}",
                f"--python_out={out_dir}",
                f"--pyi_out={out_dir}",
                f"--grpc_python_out={out_dir}",
                str(REPO_ROOT / relative),
            ]
        )
        if code != 0:
            raise RuntimeError(f"protoc failed ({code}) on {relative}")
        stem = relative.removesuffix(".proto")
        written.extend(out_dir / f"{stem}{suffix}" for suffix in GENERATED_SUFFIXES)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT, help="root to write the stubs under")
    args = parser.parse_args(argv)
    for path in generate(args.out):
        sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
