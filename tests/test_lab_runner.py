"""The real CommandRunner under the engine, with real subprocesses (small Python one-liners in
place of cluster tools): what the learner sees, what is recorded, and how a failure reads."""

from __future__ import annotations

import io
import json
import re

from rich.console import Console

from labs.engine import Engine, Options
from labs.model import POLL, Action, Lab, Step
from labs.runner import CommandRunner, format_command


def py(code: str) -> tuple[str, ...]:
    return ("python", "-c", code)


def tiny_lab(fail: bool = False) -> Lab:
    step = Step(
        number=0,
        id="tiny",
        title="A tiny step",
        docs="lab-2.md#step-0",
        summary="Two commands and a poll.",
        actions=(
            Action(
                py('print(\'{"level": "INFO", "msg": "hello"}\')'),
                "Show a log line",
                env=(("LOG_LEVEL", "INFO"),),
            ),
            Action(
                py("import pathlib; pathlib.Path('marker').write_text('x')"),
                "Leave a marker",
                show_output=False,
            ),
            Action(
                py("import pathlib,sys; sys.exit(0 if pathlib.Path('marker').exists() else 1)"),
                "Wait for the marker",
                kind=POLL,
                timeout=5,
                interval=0.1,
            ),
            *(
                (
                    Action(
                        py(
                            "import sys; print('Error: INSTALLATION FAILED: context deadline "
                            "exceeded'); sys.exit(1)"
                        ),
                        "Fail like helm does",
                    ),
                )
                if fail
                else ()
            ),
        ),
    )
    return Lab(
        id="tiny", title="Tiny", cluster_name="tiny", kubeconfig=".lab/kubeconfig", steps=(step,)
    )


class NoCluster(CommandRunner):
    """The real runner, minus Docker: the tiny lab has no cluster to look for."""

    def cluster_exists(self, name: str) -> bool:
        return True


def runner(tmp_path) -> NoCluster:
    console = Console(file=io.StringIO(), width=300, force_terminal=False)
    return NoCluster(console=console, cwd=tmp_path)


def test_commands_are_shown_as_typed_and_their_output_streams(tmp_path):
    r = runner(tmp_path)
    code = Engine(tiny_lab(), r, lab_dir=tmp_path / ".lab").run(Options())
    out = r.console.file.getvalue()
    assert code == 0, out
    first = tiny_lab().steps[0].actions[0]
    assert f"$ {format_command(first.argv, first.env)}" in out
    assert '{"level": "INFO", "msg": "hello"}' in out  # the command's own output, streamed
    assert (tmp_path / "marker").exists()  # commands run in the lab's working directory
    assert "ok after" in out
    state = json.loads((tmp_path / ".lab" / "state.json").read_text())
    assert "0" in state["steps"]


def test_a_failure_reads_as_observed_expected_and_next(tmp_path):
    r = runner(tmp_path)
    code = Engine(tiny_lab(fail=True), r, lab_dir=tmp_path / ".lab").run(Options())
    out = r.console.file.getvalue()
    assert code == 1
    assert "Step 0 failed: Fail like helm does" in out
    assert "exit code: 1" in out
    assert "What explains it" in out and "context deadline exceeded" in out
    assert "Diagnostics saved in .lab/artifacts/" in out
    assert "nox -s lab-2 -- --step 0" in out


def test_on_a_terminal_progress_spinners_do_not_get_in_the_way(tmp_path):
    """The TTY path (rich status around commands and polls; one at a time, for rich < 14)."""
    console = Console(file=io.StringIO(), width=200, force_terminal=True)
    r = NoCluster(console=console, cwd=tmp_path)
    assert Engine(tiny_lab(), r, lab_dir=tmp_path / ".lab").run(Options()) == 0
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", console.file.getvalue())
    assert "ok after" in plain
