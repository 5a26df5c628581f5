"""The three validator commands, run as a learner or the grader runs them, on hostile files and
under hostile locales: an exit status and one message per bad file, never a hang or traceback.

Each runs in a child process with a deadline (a FIFO that were opened would block it forever),
with stdout encoded strictly (`PYTHONIOENCODING=utf-8:strict`, or ASCII under `LC_ALL=C`), and
with a file whose name is not UTF-8 (Python sees it as lone surrogates, which a strict encoder
refuses to print).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from labconfig.versions import REPO_ROOT
from tests.test_validators_files import alias_bomb

LOCALES = {
    "utf8-strict": {"PYTHONIOENCODING": "utf-8:strict", "LC_ALL": "C.UTF-8"},
    "ascii": {"PYTHONIOENCODING": "ascii:strict", "LC_ALL": "C"},
    "c-locale": {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0"},
}
NON_UTF8_NAME = os.fsencode("caf") + b"\xe9-\xff.yaml"


def run(module: str, *args: str, locale: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONIOENCODING", "LANG")}
    env |= {"PYTHONPATH": str(REPO_ROOT), **LOCALES[locale]}
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=180,  # a deadline for a hang, not a speed target
    )
    # Decode leniently here: the test judges what was printed, not how the child encoded it.
    return subprocess.CompletedProcess(
        proc.args,
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
    )


def hostile_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bomb.yaml").write_text(alias_bomb())
    os.mkfifo(folder / "pipe.yaml")
    (folder / "dir.yaml").mkdir()
    (folder / "zero.yaml").symlink_to("/dev/zero")
    (folder / "loop.yaml").symlink_to(folder / "loop.yaml")
    (folder / "nul.yaml").write_bytes(b"kind: Pod\n\x00")
    (folder / "latin1.yaml").write_bytes(b"kind: Pod\nname: caf\xe9\n")
    with (folder / "big.yaml").open("wb") as f:
        f.truncate(64 * 1024 * 1024)
    (Path(os.fsdecode(os.fsencode(folder) + b"/" + NON_UTF8_NAME))).write_text("kind: [\n")
    return folder


@pytest.mark.parametrize("locale", sorted(LOCALES))
def test_pss_reports_every_hostile_file_and_exits_2(tmp_path: Path, locale: str):
    folder = hostile_folder(tmp_path / "in")
    proc = run("validators.pss", str(folder), locale=locale)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    for name, why in {
        "bomb.yaml:6": "alias bomb",
        "pipe.yaml": "named pipe",
        "dir.yaml": "is a directory",
        "loop.yaml": "at itself",
        "nul.yaml:2": "NUL byte",
        "latin1.yaml:2": "not UTF-8",
        "big.yaml": "more than the",
    }.items():
        assert any(name in line and why in line for line in proc.stderr.splitlines()), (
            name,
            proc.stderr,
        )
    assert "zero.yaml" in proc.stderr and "out of the checked folder" in proc.stderr
    assert "caf" in proc.stderr  # the badly named file, escaped, not a UnicodeEncodeError


@pytest.mark.parametrize("locale", sorted(LOCALES))
def test_manifests_reports_hostile_files_as_findings(tmp_path: Path, locale: str):
    shutil.copytree(REPO_ROOT / "manifests", tmp_path / "manifests")
    shutil.copy(REPO_ROOT / "versions.toml", tmp_path / "versions.toml")
    hostile_folder(tmp_path / "manifests" / "extra")
    proc = run("validators.manifests", str(tmp_path), "--no-helm", locale=locale)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and not proc.stderr.strip()
    fails = [line for line in proc.stdout.splitlines() if line.startswith("FAIL [yaml]")]
    assert len(fails) == 9, proc.stdout
    assert any("manifests/extra/bomb.yaml:6:" in line for line in fails)
    others = [line for line in proc.stdout.splitlines() if line.startswith("FAIL [")]
    assert others == fails, "only the hostile files fail; every other check still passes"


def test_manifests_json_output_keeps_a_non_utf8_name_as_an_escape(tmp_path: Path):
    shutil.copytree(REPO_ROOT / "manifests", tmp_path / "manifests")
    bad = Path(os.fsdecode(os.fsencode(tmp_path / "manifests") + b"/" + NON_UTF8_NAME))
    bad.write_text("a: [\n")
    proc = run("validators.manifests", str(tmp_path), "--no-helm", "--json", locale="ascii")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "\\udce9" in proc.stdout  # JSON's own escape of the undecodable byte


@pytest.mark.parametrize("locale", sorted(LOCALES))
def test_alloy_lint_refuses_hostile_values_files(tmp_path: Path, locale: str):
    folder = hostile_folder(tmp_path / "in")
    weird = os.fsdecode(os.fsencode(folder) + b"/" + NON_UTF8_NAME)
    for name, why in [
        ("bomb.yaml", "bomb.yaml:6: aliases"),
        ("pipe.yaml", "named pipe"),
        ("zero.yaml", "character device"),
        ("big.yaml", "more than the"),
        (weird, "not valid YAML"),
    ]:
        proc = run("validators.alloy_lint", str(folder / name), locale=locale)
        assert proc.returncode == 2, (name, proc.stdout, proc.stderr)
        assert why in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_the_repository_is_still_clean():
    proc = run("validators.manifests", "--no-helm", locale="utf8-strict")
    assert proc.returncode == 0, proc.stdout
    assert "manifests are consistent" in proc.stdout
