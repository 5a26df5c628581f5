"""`python -m labs run lab2 [--solve] [--hint] [--dry-run] [--until N] [--step N] [--check]
[--fresh]`,
`python -m labs drill [--list] [NAME [--check|--solve|--hint|--verify-broken] [--dry-run]]`,
`python -m labs doctor`, `python -m labs down` (the nox sessions call these)."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.markup import escape

from labconfig.settings import LAB_DIR
from labconfig.versions import REPO_ROOT
from labs.state import STATE_FILE, LabState, StateError, ensure_writable

LABS = ("lab2",)
LAB_PATH = REPO_ROOT / LAB_DIR


def _lab(name: str, settings):
    if name == "lab2":
        from labs import lab2

        return lab2.build(settings)
    raise SystemExit(f"unknown lab {name!r}; available: {', '.join(LABS)}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m labs", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a lab step by step")
    run.add_argument("lab", choices=LABS)
    run.add_argument("--dry-run", action="store_true", help="print the plan; touch nothing")
    run.add_argument("--until", type=int, metavar="N", help="stop before step N (do it by hand)")
    run.add_argument("--step", type=int, metavar="N", help="run only step N")
    run.add_argument("--check", action="store_true", help="only run the checkers")
    run.add_argument("--fresh", action="store_true", help="delete and recreate the cluster")
    run.add_argument(
        "--solve",
        action="store_true",
        help="run the reference solution (every step's commands) instead of stopping at tasks",
    )
    run.add_argument(
        "--hint", action="store_true", help="show the next hint of your current exercise"
    )
    drill = sub.add_parser("drill", help="break a working lab on purpose, then fix it")
    drill.add_argument("name", nargs="?", help="the drill (see --list)")
    drill.add_argument("--list", action="store_true", help="list the drills")
    mode = drill.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="check your fix")
    mode.add_argument("--solve", action="store_true", help="apply the reference fix, then check")
    mode.add_argument("--hint", action="store_true", help="the hints and where to look")
    mode.add_argument(
        "--verify-broken",
        action="store_true",
        help="prove the drill is in place: its checkers fail with the expected diagnosis",
    )
    drill.add_argument("--dry-run", action="store_true", help="print the commands; run nothing")
    sub.add_parser("doctor", help="check this machine for the lab")
    sub.add_parser("down", help="delete the lab's kind cluster (and nothing else)")
    return p


def _real_runner(console: Console, settings):
    """The runner for a real run, handed what it needs: the pinned tools, the kind cluster
    operations and the preflight (the runner itself imports none of them)."""
    from labs import probes
    from labs.cluster import KindClusters
    from labs.runner import CommandRunner, _default_resolver
    from labs.tools import ToolResolver

    resolver = ToolResolver(_default_resolver, notify=lambda m: console.print(f"[yellow]{m}[/]"))
    return CommandRunner(
        console=console,
        resolve=resolver,
        kubeconfig=settings.kubeconfig_path,
        clusters=KindClusters(),
        preflight=probes.preflight,
    )


def _notice(console: Console, state: LabState) -> LabState:
    """Say what happened to a progress file that could not be used (it is never lost)."""
    if state.notice:
        console.print(f"[yellow]{escape(state.notice)}[/]")
    return state


def _path_hint(console: Console, runner) -> None:
    """The plan shows `kind`, `kubectl`, `helm`: say where the pinned ones are, if downloaded."""
    dirs = runner.resolve.downloaded_dirs()
    if dirs:
        joined = ":".join(str(d) for d in dirs)
        console.print(
            f"  export PATH={joined}:$PATH    # the pinned kind/kubectl/helm the lab used"
        )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console(highlight=False, soft_wrap=True)
    if args.command == "doctor":
        from labs import doctor, probes

        # The command itself always tells the truth: LAB_PREFLIGHT=warn only lets the lab go on.
        findings = doctor.diagnose(probes.gather_facts())
        console.print("[bold]Lab preflight[/]")
        for line in doctor.render(findings):
            console.print(line)
        if doctor.ready(findings):
            console.print("[green]Ready for `nox -s lab-2`.[/]")
            return 0
        console.print(
            "[bold red]Not ready: fix the items marked ✗ before running the lab.[/] "
            "docs/troubleshooting.md explains each one, with or without internet."
        )
        return 1

    from labconfig.versions import load_versions
    from labs import engine
    from labs.settings import Settings

    settings = Settings.from_env()

    if args.command == "drill":
        return _drill(args, console, settings)

    if args.command == "down":
        name = load_versions()["kind"]["cluster_name"]
        runner = _real_runner(console, settings)
        result = runner.delete_cluster(name)
        console.print(result.output)
        if result.ok:
            try:
                _notice(console, LabState.load(LAB_PATH / STATE_FILE, "lab2", name)).reset()
            except StateError as e:
                console.print(f"[red]{escape(str(e))}[/]")
                return 1
        return 0 if result.ok else 1

    lab = _lab(args.lab, settings)
    options = engine.Options(
        dry_run=args.dry_run,
        until=args.until,
        step=args.step,
        check=args.check,
        fresh=args.fresh,
        solve=args.solve,
        hint=args.hint,
    )
    try:
        engine.validate(lab, options)
    except engine.OptionsError as e:
        console.print(f"[red]{e}[/]")
        return 2
    if options.dry_run:
        # Plain print: the plan is meant to be copied into a shell or a document.
        sys.stdout.write(engine.render_plan(lab, options))
        return 0
    try:
        # Before any step: a read-only checkout is one clear message, not an EROFS traceback.
        ensure_writable(LAB_PATH)
        runner = _real_runner(console, settings)
        lab_engine = engine.Engine(lab, runner)
        _notice(console, lab_engine.state)
        code = lab_engine.run(options)
    except StateError as e:
        console.print(f"[red]{escape(str(e))}[/]")
        return 1
    except KeyboardInterrupt:
        console.print(
            "\n[yellow]Interrupted.[/] Finished steps are recorded in .lab/state.json; "
            "rerun `nox -s lab-2` to continue where it stopped."
        )
        return 130
    _path_hint(console, runner)
    return code


def _drill(args, console: Console, settings) -> int:
    from labs import drills, engine, lab2

    catalogue = drills.build(settings)
    if args.list or not args.name:
        sys.stdout.write(drills.render_list(catalogue))
        return 0 if args.list else 2
    try:
        drill = drills.get(catalogue, args.name)
    except KeyError as e:
        console.print(f"[red]{e.args[0]}[/]")
        return 2
    if args.dry_run:
        sys.stdout.write(drills.render_plan(drill, solve=args.solve))
        return 0
    if args.hint:
        for line in drills.hint_lines(drill):
            console.print(escape(line))
        return 0
    mode = (
        drills.CHECK
        if args.check
        else drills.SOLVE
        if args.solve
        else drills.VERIFY_BROKEN
        if args.verify_broken
        else drills.BREAK
    )
    try:
        ensure_writable(LAB_PATH)
        runner = _real_runner(console, settings)
        lab_engine = engine.Engine(lab2.build(settings), runner)
        _notice(console, lab_engine.state)
        return drills.run(drill, lab_engine, mode)
    except StateError as e:
        console.print(f"[red]{escape(str(e))}[/]")
        return 1


if __name__ == "__main__":
    sys.exit(main())
