"""``palhdl run``: a matmul on a board over its host link, from ``.npy`` files to a saved result.

The command's steps are functions a test can call alone: :func:`load_operands` reads the
operands (values by default, PAL codes with ``--codes``), :func:`input_warning` counts the
inputs the format cannot represent, :func:`save_result` writes the result atomically and
:func:`save_fallback` keeps it when the final write fails. The output path is checked before
the board is touched (:func:`palhdl.validate.check_output_file`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from palhdl.boards.hostlink.driver import HostLink, HostLinkError
from palhdl.boards.simulated import is_simulated, open_simulated_board
from palhdl.format import PALFormat
from palhdl.sim import golden
from palhdl.validate import check_output_file

__all__ = ["input_warning", "load_operands", "run", "save_fallback", "save_result"]


def load_operands(a_path, b_path, *, codes: bool) -> tuple[np.ndarray, np.ndarray]:
    """Read A and B from ``.npy`` files.

    Without ``codes`` every array holds values: integer arrays are read as numbers (float64,
    as :func:`palhdl.sim.golden.matmul_values` reads them) and quantised like floats. With
    ``codes`` both must be integer arrays of PAL codes, used as they are.

    Raises
    ------
    OSError
        A file cannot be read.
    ValueError
        A file is not a ``.npy`` array, or ``codes`` is given for a float array.
    """
    operands = []
    for name, path in (("a", a_path), ("b", b_path)):
        try:
            array = np.load(path)
        except OSError as error:  # a missing or unreadable file
            raise OSError(f"{name}: {str(path)!r}: {error.strerror or error}") from None
        except EOFError:
            raise ValueError(f"{name}: {str(path)!r} is empty, not a .npy array") from None
        except ValueError as error:  # pickled objects, or not a .npy file
            raise ValueError(f"{name}: {str(path)!r} is not a .npy array ({error})") from None
        if not isinstance(array, np.ndarray):  # an .npz archive
            array.close()
            raise ValueError(f"{name}: {str(path)!r} is an .npz archive, not a .npy array")
        integer = array.dtype.kind in "iu"
        if codes and not integer:
            raise ValueError(
                f"--codes reads integer arrays of PAL codes, but {name} ({str(path)!r}) holds "
                f"{array.dtype} values; drop --codes to quantise them"
            )
        operands.append(array.astype(np.float64) if integer and not codes else array)
    return operands[0], operands[1]


def input_warning(a, b, fmt: PALFormat, *, adaptive: bool) -> str | None:
    """Describe the float inputs ``fmt`` cannot represent, or return ``None`` if there are none.

    Infinities saturate to ``+-max`` and NaNs make NaN results (``docs/format.md``); without
    adaptive scaling, finite values beyond the largest magnitude saturate too.
    """
    values = np.concatenate([np.ravel(a), np.ravel(b)]).astype(np.float64)
    infinite = int(np.count_nonzero(np.isinf(values)))
    nan = int(np.count_nonzero(np.isnan(values)))
    largest = float(golden.decode(fmt.max_code, fmt))
    beyond = 0 if adaptive else int(np.count_nonzero(np.isfinite(values) & (abs(values) > largest)))
    if not infinite + nan + beyond:
        return None
    parts = [f"{infinite} infinite"] if infinite else []
    if beyond:
        parts.append(f"{beyond} beyond +-{largest:g} (no adaptive scaling)")
    saturated = f"{infinite + beyond} saturate to +-max ({', '.join(parts)})" if parts else ""
    nans = f"{nan} NaN (NaN results)" if nan else ""
    listed = " and ".join(part for part in (saturated, nans) if part)
    return f"warning: of {values.size} input values, {listed}"


def _write(file, result) -> None:
    if isinstance(result, dict):
        np.savez(file, **result)
    else:
        np.save(file, result)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_result(path, result) -> Path:
    """Write ``result`` to ``path`` atomically: a temporary file in its directory, then replace.

    ``result`` is an array (``.npy``) or a dict of arrays (``.npz``); no suffix is added. On
    failure the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            _write(file, result)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return path


def save_fallback(path, result) -> Path | None:
    """Save ``result`` under a new name like ``path``'s in the current or the temporary directory.

    Returns where it went, or ``None`` if neither directory takes it.
    """
    path = Path(path)
    for directory in (Path.cwd(), Path(tempfile.gettempdir())):
        try:
            handle, name = tempfile.mkstemp(
                dir=directory, prefix=f"{path.stem}.", suffix=path.suffix
            )
        except OSError:
            continue
        try:
            with os.fdopen(handle, "wb") as file:
                _write(file, result)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(name)
            continue
        return Path(name)
    return None


def _error(error, status: int) -> int:
    print(f"palhdl run: error: {error}", file=sys.stderr)
    return status


def run(args: argparse.Namespace) -> int:
    """Run ``palhdl run`` with parsed ``args``; return the exit status."""
    out = None
    try:
        if args.out is not None:
            suffix = ".npz" if args.output == "raw" else ".npy"
            out = check_output_file("--out", args.out, (suffix,))
        a, b = load_operands(args.a, args.b, codes=args.codes)
        result, stats, decode_fmt = _multiply(args, a, b)
    except (TypeError, ValueError) as error:
        return _error(error, 2)
    except (HostLinkError, OSError, RuntimeError) as error:  # RuntimeError: no Verilator
        return _error(error, 1)
    if decode_fmt is not None:  # a PAL readout's codes, as float32 values
        result = golden.to_float32_bits(result, decode_fmt).view(np.float32)
    summary = (
        f"palhdl run: {stats.tiles} tiles, {stats.macs} MACs, {stats.cycles} array cycles, "
        f"{stats.seconds:.2f} s"
    )
    if out is None:
        print(result)
        print(summary, file=sys.stderr)
        return 0
    try:
        save_result(out, result)
    except OSError as error:
        kept = save_fallback(out, result)
        where = f"saved in {str(kept)!r} instead" if kept else "printed below instead"
        print(
            f"palhdl run: error: --out {str(out)!r}: cannot write the result "
            f"({error.strerror or error}); {where}",
            file=sys.stderr,
        )
        if kept is None:
            print(result)
        return 1
    print(summary, file=sys.stderr)
    return 0


def _multiply(args: argparse.Namespace, a: np.ndarray, b: np.ndarray):
    """Identify the board, choose the split, warn about unrepresentable inputs and multiply.

    Returns ``(result, stats, decode_fmt)``: ``decode_fmt`` is the format of PAL codes that
    ``--output float32`` still has to decode (a PAL readout), else ``None``.
    """
    port = args.port
    if is_simulated(port):
        port = open_simulated_board(port, baud=args.baud, timeout=args.timeout)
    try:
        link = HostLink(port, baud=args.baud, timeout=args.timeout)
    except BaseException:
        if not isinstance(port, str):  # a simulated board's port, which HostLink did not take
            port.close()
        raise
    with link:
        info = link.identify()
        # A PAL readout's float32 output is its codes' values (the device rounded to PAL).
        decode_pal = args.output == "float32" and info.output == "pal"
        split = info.config.fmt if args.split is None else args.split
        if args.split == "auto":
            split = _choose_split(a, b, info.config.fmt.width, args.block_size)
        print(
            f"palhdl run: {args.port}: {info.rows} x {info.cols} {info.config.fmt} array, "
            f"{info.output} readout, k_max {info.k_max}; {args.output} output, split "
            f"{split.int_bits}.{split.frac_bits}"
            + ("" if args.block_size is None else f", blocks of {args.block_size}"),
            file=sys.stderr,
        )
        if not args.codes:
            warning = input_warning(a, b, split, adaptive=not args.no_adaptive)
            if warning is not None:
                print(f"palhdl run: {warning}", file=sys.stderr)
        if link.split != split:
            link.load_split(split)  # (refuses a split the board cannot compute in)
        result, stats = link.matmul(
            a,
            b,
            output="pal" if decode_pal else args.output,
            adaptive=not args.no_adaptive,
            block_size=args.block_size,
        )
    return result, stats, info.config.fmt if decode_pal else None


def _choose_split(a, b, width: int, block_size: int | None):
    """``--split auto``: the split golden.choose_split picks for the operands (reported)."""
    if not (np.issubdtype(a.dtype, np.floating) and np.issubdtype(b.dtype, np.floating)):
        raise ValueError("--split auto needs values, not --codes (codes already have a split)")
    choice = golden.choose_split(a, b, width=width, block_size=block_size)
    print(f"palhdl run: {choice.report()}", file=sys.stderr)
    return choice.fmt
