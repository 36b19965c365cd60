"""`riskmon accel`: build / check the compiled (Cython) builds of the hot modules (riskmon.accel).

Why a command: the build needs a C compiler and ~1 minute, so it runs once per source change (the setup
scripts call ``build --if-needed``), not at import; ``status`` tells an operator whether a worker will
run compiled or pure Python before it starts.
"""

from __future__ import annotations

import argparse
import json

from riskmon import accel


def register(sub: argparse._SubParsersAction) -> None:
    """Add `accel build|status`."""
    p = sub.add_parser(
        "accel",
        help="compile the hot modules with Cython, or show whether the compiled build is in use",
        description="The engine, features, ledger, state serialisation, EWS core and per-event model code "
        "can run compiled by Cython from the unchanged source (same results; ~10-15 % less worker CPU per "
        "message, the engine ~25 %: docs/performance.md). A build is used only while every source still matches it; "
        "RISKMON_ACCEL=0 forces pure Python.",
    )
    p.set_defaults(func=lambda args: p.print_help() or 2)
    cmds = p.add_subparsers(dest="accel_command", metavar="SUBCOMMAND")
    b = cmds.add_parser(
        "build", help="compile the modules (~1.5 min on 2 cores; then only the changed ones)",
        description=f"Compile {len(accel.MODULES)} modules with Cython and the system C compiler into "
        "RISKMON_ACCEL_DIR (default .accel/<python> next to the sources). Exit 0 built (or already "
        "current with --if-needed), 1 a module failed to compile, 2 Cython or a compiler is missing.",
    )
    b.add_argument("--if-needed", action="store_true", help="do nothing when the build is already current")
    b.add_argument("--jobs", type=int, default=None, help="parallel compiles (default: CPU count)")
    b.set_defaults(func=_build)
    s = cmds.add_parser("status", help="compiled or pure Python, and why (exit 0 compiled, 1 pure)",
                        description="Whether `import riskmon` loads the compiled modules in this environment.")
    s.add_argument("--json", action="store_true", help="print as JSON")
    s.set_defaults(func=_status)


def _build(args: argparse.Namespace) -> int:
    import shutil

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from riskmon.accel_build import BuildError, build, cython_version, is_current

    console = Console(stderr=True)
    if args.if_needed and is_current():
        console.print(f"accel: build is current ({accel.build_dir()})")
        return 0
    if cython_version() is None:
        console.print("[red]accel: Cython is not installed[/red] (pip install 'cython>=3.1,<4')")
        return 2
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        console.print("[red]accel: no C compiler (cc/gcc) on PATH[/red] (e.g. apt-get install gcc)")
        return 2
    with Progress(TextColumn("accel: compiling"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}"), console=console, transient=True) as bar:
        task = bar.add_task("", total=len(accel.MODULES))
        try:
            target = build(jobs=args.jobs, progress=lambda m: bar.update(task, advance=1, description=m))
        except BuildError as exc:
            bar.stop()
            console.print(f"[red]accel: build failed[/red]\n{exc}")
            return 1
    console.print(f"accel: built {len(accel.MODULES)} modules into {target}")
    return 0


def _status(args: argparse.Namespace) -> int:
    st = accel.status()
    if args.json:
        print(json.dumps({"active": st.active, "reason": st.reason, "directory": str(st.directory),
                          "modules": st.modules}))
    else:
        print(f"accel: {st.describe()}")
    return 0 if st.active else 1
