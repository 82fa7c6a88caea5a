"""``palhdl bench``: every measurement of the benchmark in one run, one report.

The sections (:data:`SECTIONS`) run one after the other, the timed ones (simulation and
golden-model speed) last, when the place-and-route runs no longer load the machine; after each,
``report.json`` is rewritten, so an interrupted or failing run keeps what it measured. At the
end the output directory holds ``report.json`` (every number, with the date, the machine and
the tool versions), ``report.md`` (the same as tables, :mod:`~palhdl.studies.bench.report`) and
the PNG plots (:mod:`~palhdl.studies.bench.plots`). ``--readme`` then rewrites the README's
headline table from that ``report.json``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path

from palhdl.studies.arguments import integer
from palhdl.studies.bench import plots
from palhdl.studies.bench.options import BenchOptions, stderr_progress
from palhdl.studies.bench.report import (
    REPORT_VERSION,
    environment,
    render_report,
    write_readme_section,
)
from palhdl.synth.cache import ResultCache
from palhdl.validate import check_output_dir

__all__ = ["SECTIONS", "add_arguments", "main", "run", "run_bench"]

#: Section name -> (module with ``measure``/``render``, title), in the order they run and are
#: reported.
SECTIONS: dict[str, tuple[str, str]] = {
    "accuracy": ("palhdl.studies.bench.accuracy", "Accuracy"),
    "energy": ("palhdl.studies.bench.energy", "Energy per MAC (a proxy)"),
    "area": ("palhdl.studies.bench.area", "MAC cost"),
    "arrays": ("palhdl.studies.bench.boards", "Arrays on the boards"),
    "rtl": ("palhdl.studies.bench.tiles", "RTL checks and array utilisation"),
    "speed": ("palhdl.studies.bench.speed", "Speed of the tools"),
}

_BOARDS = ("icebreaker", "ulx3s-85f")


def _names(option: str, text: str, choices) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in choices]
    if not names or unknown:
        raise ValueError(
            f"{option} must be a comma-separated list of {', '.join(choices)}, not {text!r}"
        )
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``palhdl bench`` to ``parser``."""
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: every section at toy sizes (a few minutes)",
    )
    parser.add_argument(
        "--only",
        metavar="SECTIONS",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to run (default all: {','.join(SECTIONS)})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("bench"),
        help="output directory for report.json, report.md and the plots (default bench)",
    )
    parser.add_argument(
        "--boards",
        default=",".join(_BOARDS),
        help=f"boards of the arrays section (default {','.join(_BOARDS)})",
    )
    parser.add_argument("--seed", type=integer("seed", 0), default=0, help="data seed (0)")
    parser.add_argument(
        "--jobs",
        type=integer("jobs", 1, 64),
        default=min(os.cpu_count() or 1, 4),
        help="synthesis and place-and-route runs at a time (default: the cores, at most 4)",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="place and route everything again instead of reusing results of the same "
        "netlists, tools and seeds ($PALHDL_CACHE/results, default ~/.cache/palhdl/results)",
    )
    parser.add_argument(
        "--readme",
        type=Path,
        metavar="PATH",
        help="then rewrite the headline section of PATH (README.md) from this run's report",
    )


def run_bench(options: BenchOptions, sections, out: Path) -> tuple[dict, list[str]]:
    """Run ``sections`` (names of :data:`SECTIONS`) and write the report into ``out``.

    Returns the report (the contents of ``report.json``) and the names of the sections that
    failed; a failed section has ``{"error": message}`` in the report, and the others run on.
    """
    report = {
        "palhdl_bench": REPORT_VERSION,
        "quick": options.quick,
        **environment(),
        "seed": options.seed,
        "sections": list(sections),
        "seconds": {},
    }
    failed = []
    for name in sections:
        module_name, title = SECTIONS[name]
        options.progress(f"{title} ...")
        start = time.perf_counter()
        try:
            report[name] = importlib.import_module(module_name).measure(options)
        except Exception as error:
            failed.append(name)
            report[name] = {"error": f"{type(error).__name__}: {error}"}
            traceback.print_exc(file=sys.stderr)
        report["seconds"][name] = round(time.perf_counter() - start, 1)
        options.progress(
            f"{title}: {'failed' if name in failed else 'done'} in {report['seconds'][name]:.0f} s"
        )
        _write(out / "report.json", json.dumps(report, indent=1) + "\n")
    report["plots"] = plots.write_plots(report, out)
    _write(out / "report.json", json.dumps(report, indent=1) + "\n")
    _write(out / "report.md", render_report(report, SECTIONS))
    return report, failed


def _write(path: Path, text: str) -> None:
    scratch = path.with_suffix(path.suffix + ".tmp")
    scratch.write_text(text)
    os.replace(scratch, path)


def run(args: argparse.Namespace) -> int:
    """Run ``palhdl bench`` with the options of :func:`add_arguments`.

    Returns
    -------
    int
        0 if every section ran; 1 if one failed (the report has the others); 2 after a
        one-line ``palhdl bench: error: ...`` naming the option at fault.
    """
    try:
        sections = _names("--only", args.only, SECTIONS)
        boards = _names("--boards", args.boards, _BOARDS)
        out = check_output_dir("--out", args.out)
        if args.readme is not None and not args.readme.is_file():
            raise ValueError(f"--readme must be an existing Markdown file, not {args.readme}")
        if args.readme is not None and (args.quick or set(sections) != set(SECTIONS)):
            raise ValueError("--readme needs a full run of every section (no --quick, no --only)")
    except (TypeError, ValueError, OSError) as error:
        print(f"palhdl bench: error: {error}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    options = BenchOptions(
        quick=args.quick,
        seed=args.seed,
        work_dir=out / "work",
        cache=None if args.no_cache else ResultCache(),
        boards=boards,
        jobs=args.jobs,
        progress=stderr_progress,
    )
    start = time.perf_counter()
    report, failed = run_bench(options, sections, out)
    stderr_progress(
        f"wrote {out / 'report.md'}, {out / 'report.json'} and {len(report['plots'])} plots "
        f"in {time.perf_counter() - start:.0f} s"
    )
    if failed:
        print(f"palhdl bench: error: sections failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    if args.readme is not None:
        write_readme_section(args.readme, report, out)
    return 0


def main(argv=None) -> int:
    """``palhdl bench`` on its own: parse ``argv`` (default ``sys.argv[1:]``) and :func:`run`."""
    parser = argparse.ArgumentParser(prog="palhdl bench")
    add_arguments(parser)
    return run(parser.parse_args(argv))
