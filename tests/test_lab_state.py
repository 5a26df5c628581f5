"""`.lab/state.json`: checked by shape; an unusable file is set aside, never used, never lost;
a read-only checkout is a clear message on a real `python -m labs run`, not a traceback."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from labconfig.versions import REPO_ROOT
from labs.state import LabState, StateError, ensure_writable, shape_problem

GOOD = {
    "lab": "lab2",
    "cluster": "lab2-logging",
    "updated_at": "2026-01-01T00:00:00Z",
    "steps": {"0": {"done_at": "2026-01-01T00:00:00Z"}},
    "checks": {"lab2.json-stdout": {"result": "passed", "at": "2026-01-01T00:00:00Z"}},
}


def load(path: Path) -> LabState:
    return LabState.load(path, "lab2", "lab2-logging")


def test_a_well_shaped_record_is_resumed(tmp_path: Path):
    path = tmp_path / "state.json"
    path.write_text(json.dumps(GOOD))
    state = load(path)
    assert state.is_done(0) and state.checks["lab2.json-stdout"]["result"] == "passed"
    assert not state.notice


def test_a_record_of_another_cluster_starts_over_without_complaint(tmp_path: Path):
    path = tmp_path / "state.json"
    path.write_text(json.dumps({**GOOD, "cluster": "other"}))
    state = load(path)
    assert not state.steps and not state.notice and path.exists()


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b'{"lab": "lab2", "steps": {', "not valid JSON"),
        (b"[1, 2]", "JSON list, not an object"),
        (json.dumps({**GOOD, "lab": 2}).encode(), '"lab" is missing or not text'),
        (json.dumps({**GOOD, "steps": ["0"]}).encode(), '"steps" is a list'),
        (json.dumps({**GOOD, "steps": {"0": "done"}}).encode(), '"steps.0" is not an object'),
        (json.dumps({**GOOD, "steps": {"zero": {"done_at": "x"}}}).encode(), "step number"),
        (
            json.dumps({**GOOD, "checks": {"c": {"result": "maybe"}}}).encode(),
            "\"checks.c.result\" is 'maybe'",
        ),
        (b'{"lab": "lab2"}\x00\x00', "NUL byte"),
        (b"\xff\xfe{}", "not UTF-8"),
    ],
)
def test_an_unusable_record_is_set_aside_with_its_content_and_reported(tmp_path, content, why):
    path = tmp_path / "state.json"
    path.write_bytes(content)
    state = load(path)
    assert not state.steps and not state.checks
    bad = tmp_path / "state.json.bad"
    assert bad.read_bytes() == content, "the learner's file must be kept as it was"
    assert not path.exists()
    assert why in state.notice and "set aside as state.json.bad" in state.notice
    assert f"mv {bad} {path}" in state.notice
    state.mark_done(1)
    assert shape_problem(json.loads(path.read_text())) is None
    assert bad.read_bytes() == content


def test_an_earlier_set_aside_file_is_never_overwritten(tmp_path: Path):
    path = tmp_path / "state.json"
    (tmp_path / "state.json.bad").write_text("first")
    path.write_text("second")
    load(path)
    assert (tmp_path / "state.json.bad").read_text() == "first"
    assert (tmp_path / "state.json.bad-2").read_text() == "second"


def test_a_fifo_or_a_directory_as_the_state_file_is_set_aside_unopened(tmp_path: Path):
    fifo = tmp_path / "fifo" / "state.json"
    fifo.parent.mkdir()
    os.mkfifo(fifo)  # reading it would block forever
    state = load(fifo)
    assert "named pipe" in state.notice and (fifo.parent / "state.json.bad").exists()
    folder = tmp_path / "dir" / "state.json"
    folder.mkdir(parents=True)
    state = load(folder)
    assert "a directory" in state.notice and (folder.parent / "state.json.bad").is_dir()


def test_an_oversize_record_is_set_aside_unread(tmp_path: Path):
    path = tmp_path / "state.json"
    with path.open("wb") as f:
        f.truncate(64 * 1024 * 1024)
    assert "more than the" in load(path).notice


def test_when_the_bad_file_cannot_be_moved_it_is_left_alone_and_never_overwritten(
    tmp_path: Path, monkeypatch
):
    path = tmp_path / "state.json"
    path.write_text("{broken")

    def read_only(*_args):  # what a read-only file system answers to rename(2)
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(os, "replace", read_only)
    state = load(path)
    assert "left as it is" in state.notice and not state.steps
    with pytest.raises(StateError, match="read-only file system"):
        state.mark_done(0)
    assert path.read_text() == "{broken"


def test_a_lab_dir_that_cannot_be_written_is_a_state_error(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StateError, match="The lab cannot write"):
        ensure_writable(blocker / ".lab")  # a regular file where a folder should be
    with pytest.raises(StateError, match="The lab cannot write"):
        LabState(blocker / ".lab" / "state.json", "lab2", "c").save()


def _can_mount_read_only() -> bool:
    if not shutil.which("unshare") or not shutil.which("mount"):
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount --bind / / && mount -o remount,bind,ro / /"],
        capture_output=True,
    )
    return probe.returncode == 0


@pytest.mark.skipif(
    not _can_mount_read_only(), reason="needs a private mount namespace (unshare -m as root)"
)
def test_a_real_run_from_a_read_only_checkout_says_so_without_a_traceback():
    # The checkout is bind-mounted read-only inside a private mount namespace only: the rest
    # of the machine still sees it writable. The engine's first write is .lab/, before any
    # command runs, so nothing reaches a cluster.
    repo = str(REPO_ROOT)
    script = (
        f'mount --bind "{repo}" "{repo}" && mount -o remount,bind,ro "{repo}" "{repo}" && '
        f'cd "{repo}" && exec "{sys.executable}" -m labs run lab2'
    )
    env = {**os.environ, "PYTHONPATH": repo, "PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "200"}
    proc = subprocess.run(
        ["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert "read-only file system" in output and "writable checkout" in output
    assert "Traceback" not in output
