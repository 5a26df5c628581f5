"""Execute the notebooks with nbclient, the way CI does: `python notebooks/run.py [NAME ...]`.

Each notebook runs top to bottom in a fresh kernel with `notebooks/` as its working directory.
A cell that raises stops that notebook; the run then prints the failing cell and its error and
exits non-zero. The executed copies, with every output, are written to `notebooks/executed/`
(ignored by git, so the committed notebooks stay free of outputs; `--output DIR` picks another
folder, `--no-output` keeps nothing). Open them in Jupyter or any notebook viewer. The site build
runs the offline notebook through the same `execute()` and links its executed copy.

The kernel talks to us over local IPC sockets where the platform has them, not over TCP: TCP
would be readable by any local user, and ipykernel warns about it on every start.

The offline notebook starts the bookstore locally and needs no cluster. The live one checks for a
lab cluster itself and skips its queries, with a message, when there is none: it still executes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

NOTEBOOKS_DIR = Path(__file__).resolve().parent
DEFAULT_OUTPUT = NOTEBOOKS_DIR / "executed"
DEFAULT_CELL_TIMEOUT = 300  # seconds; generous for slow CI machines, far above a normal run


def kernel_manager(socket_dir: str):
    """A python3 kernel manager on IPC sockets in `socket_dir` (POSIX), else on loopback TCP."""
    from jupyter_client.manager import KernelManager

    if os.name != "posix":  # Windows has no IPC transport for ZeroMQ
        return KernelManager(kernel_name="python3")
    # With the ipc transport, `ip` is the path prefix of the kernel's socket files.
    return KernelManager(
        kernel_name="python3", transport="ipc", ip=os.path.join(socket_dir, "kernel")
    )


def execute(path: Path, *, cell_timeout: int = DEFAULT_CELL_TIMEOUT, output: Path | None = None):
    """Run one notebook; return the executed notebook node. Raises CellExecutionError.

    With `output`, the executed copy is written there as well, also when a cell failed, so the
    failing output can be read.
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="nb-kernel-") as socket_dir:
        km = kernel_manager(socket_dir)
        client = NotebookClient(
            nb,
            km=km,
            timeout=cell_timeout,
            kernel_name="python3",
            resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
        )
        try:
            client.execute()
        finally:
            # nbclient only shuts down kernels it created itself; this one is ours.
            if km.has_kernel:
                km.shutdown_kernel()
            if output is not None:
                output.mkdir(parents=True, exist_ok=True)
                nbformat.write(nb, output / path.name)
    return nb


def _select(names: list[str]) -> list[Path]:
    available = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
    if not names:
        return available
    chosen = []
    for name in names:
        stem = Path(name).stem
        match = [p for p in available if p.stem == stem]
        if not match:
            known = ", ".join(p.stem for p in available) or "none"
            raise SystemExit(f"no notebook {name!r} in {NOTEBOOKS_DIR}; available: {known}")
        chosen += match
    return chosen


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebooks to run (default: all), e.g. offline")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="folder for the executed copies (default: notebooks/executed)",
    )
    where.add_argument(
        "--no-output", dest="output", action="store_const", const=None, help="keep nothing"
    )
    parser.add_argument(
        "--cell-timeout", type=int, default=DEFAULT_CELL_TIMEOUT, help="seconds per cell"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    failed = []
    for path in _select(args.names):
        started = time.monotonic()
        print(f"executing {path.relative_to(NOTEBOOKS_DIR.parent)} ...", flush=True)
        try:
            execute(path, cell_timeout=args.cell_timeout, output=args.output)
        except (CellExecutionError, CellTimeoutError, DeadKernelError) as e:
            failed.append(path.name)
            print(f"FAILED {path.name} after {time.monotonic() - started:.1f} s:\n{e}", flush=True)
            continue
        print(f"ok     {path.name} in {time.monotonic() - started:.1f} s", flush=True)
    if failed:
        print(f"{len(failed)} notebook(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    if args.output:
        print(f"executed copies, with their outputs, in {args.output}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
