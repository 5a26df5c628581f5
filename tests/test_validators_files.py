"""The validators' one file loader (`validators.files`) against hostile files.

Every hostile file is generated here, in tmp_path; none is committed. Each must end as one
FileProblem naming the file (and the line where there is one), never a hang, a memory blow-up
or a traceback; ordinary files, aliases included, still load.
"""

from __future__ import annotations

import os
import shutil
import tracemalloc
from pathlib import Path

import pytest
import yaml

from checks import grading
from labconfig.versions import REPO_ROOT
from validators import files, manifests, pss


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """The classic "billion laughs": each level refers `width` times to the one before."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    previous = "a"
    for name in "bcdefghijklmnop"[: levels - 1]:
        lines.append(f"{name}: &{name} [{', '.join(['*' + previous] * width)}]")
        previous = name
    return "\n".join(lines) + "\n"


def problem_of(path: Path) -> files.FileProblem:
    with pytest.raises(files.FileProblem) as caught:
        files.yaml_documents(path)
    return caught.value


def problem_and_peak(path: Path) -> tuple[files.FileProblem, int]:
    """`problem_of(path)` and the most memory (bytes) Python held while finding it."""
    tracemalloc.start()
    try:
        problem = problem_of(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return problem, peak


# --- YAML aliases and nesting -----------------------------------------------------------------


def test_an_alias_bomb_is_refused_with_file_and_line_and_flat_memory(tmp_path: Path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb())
    assert bomb.stat().st_size < 1024
    problem, peak = problem_and_peak(bomb)
    assert problem.path == str(bomb)
    # Line 5 holds e: 9^5 = 59,049 leaves plus the lists; the next level passes 100,000.
    assert problem.line == 6
    assert "alias bomb" in problem.message
    assert peak < 2 * 1024 * 1024, f"peak {peak} bytes: the bomb was expanded"
    assert len(str(problem)) < 400


def test_a_few_aliases_are_fine(tmp_path: Path):
    values = tmp_path / "values.yaml"
    values.write_text(
        "defaults: &res {cpu: 100m, memory: 128Mi}\n"
        "catalog: {resources: *res}\norders: {resources: *res}\n"
        "merged:\n  <<: *res\n  cpu: 200m\n"
    )
    data = files.yaml_mapping(values)
    assert data["orders"]["resources"] == {"cpu": "100m", "memory": "128Mi"}
    assert data["merged"] == {"cpu": "200m", "memory": "128Mi"}


def test_an_alias_inside_its_own_value_is_refused(tmp_path: Path):
    loop = tmp_path / "loop.yaml"
    loop.write_text("kind: Pod\nspec: &s\n  containers: [*s]\n")
    problem = problem_of(loop)
    assert "refers to the value that contains it" in problem.message
    assert problem.line is not None


@pytest.mark.parametrize("style", ["flow", "block"])
def test_nesting_deeper_than_the_limit_is_refused(tmp_path: Path, style: str):
    deep = tmp_path / "deep.yaml"
    depth = files.MAX_DEPTH + 5
    if style == "flow":
        deep.write_text("a: " + "[" * depth + "]" * depth + "\n")
    else:
        deep.write_text("".join("  " * i + f"k{i}:\n" for i in range(depth)) + "  " * depth + "x")
    assert "nest more than" in problem_of(deep).message


def test_nesting_through_aliases_counts_too(tmp_path: Path):
    half = files.MAX_DEPTH // 2 + 5
    text = "a: &a " + "[" * half + "]" * half + "\nb: " + "[" * half + "*a" + "]" * half + "\n"
    (tmp_path / "x.yaml").write_text(text)
    assert "nest more than" in problem_of(tmp_path / "x.yaml").message


def test_invalid_yaml_names_the_line_and_column(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Pod\nmetadata:\n  name: x\n spec: [\n")
    problem = problem_of(bad)
    assert problem.line is not None and "not valid YAML at column" in problem.message


def test_python_tags_and_huge_integers_are_errors_not_objects(tmp_path: Path):
    tag = tmp_path / "tag.yaml"
    tag.write_text("a: !!python/object/apply:os.system ['true']\n")
    assert "not valid YAML" in problem_of(tag).message
    big = tmp_path / "big.yaml"
    big.write_text("replicas: " + "9" * 5000 + "\n")
    problem = problem_of(big)
    assert problem.line == 1 and "cannot be read" in problem.message
    assert len(str(problem)) < 600


# --- what is a file -----------------------------------------------------------------------------


def test_a_fifo_is_reported_without_opening_it(tmp_path: Path):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)  # an open() for reading would block until a writer comes: never here
    assert "named pipe (FIFO)" in problem_of(fifo).message


def test_a_device_is_reported_without_reading_it():
    problem = problem_of(Path("/dev/zero"))
    assert "character device" in problem.message and "not opened" in problem.message


def test_a_directory_named_like_yaml_is_reported(tmp_path: Path):
    (tmp_path / "x.yaml").mkdir()
    found, skipped = files.yaml_files(tmp_path)
    assert found == [tmp_path / "x.yaml"] and not skipped
    assert "is a directory" in problem_of(tmp_path / "x.yaml").message


def test_a_symlink_loop_is_reported(tmp_path: Path):
    loop = tmp_path / "loop.yaml"
    loop.symlink_to(loop)
    assert "points (eventually) at itself" in problem_of(loop).message


def test_an_oversize_file_is_reported_unread(tmp_path: Path):
    big = tmp_path / "big.yaml"
    with big.open("wb") as f:
        f.truncate(files.MAX_FILE_BYTES + 1)  # sparse: costs no disk
    problem, peak = problem_and_peak(big)
    message = problem.message
    assert f"more than the {files.MAX_FILE_BYTES:,}" in message
    assert peak < 1024 * 1024


@pytest.mark.parametrize(
    ("content", "expected", "line"),
    [
        (b"kind: Pod\n\x00\x01\x02", "NUL byte at offset 10", 2),
        (b"kind: Pod\nname: caf\xe9\n", "not UTF-8 text (byte 0xe9", 2),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "NUL byte at offset 8", 3),
    ],
)
def test_binary_or_undecodable_content_is_one_clear_error(tmp_path, content, expected, line):
    path = tmp_path / "x.yaml"
    path.write_bytes(content)
    problem = problem_of(path)
    assert expected in problem.message and problem.line == line
    assert str(problem).startswith(f"{path}:{line}: ")


def test_a_utf8_bom_is_accepted(tmp_path: Path):
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfkind: Pod\n")
    assert files.yaml_documents(path)[0].value == {"kind": "Pod"}


def test_messages_are_clipped():
    assert len(files.clip("x" * 100_000)) < files.MESSAGE_LIMIT + 40
    assert files.clip("short") == "short"


# --- walking a folder ---------------------------------------------------------------------------


def test_links_out_of_the_folder_and_to_folders_are_reported_not_followed(tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.yaml").write_text("password: hunter2\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "ok.yaml").write_text("a: 1\n")
    (sub / "leak.yaml").symlink_to(outside / "secret.yaml")
    (sub / "zero.yaml").symlink_to("/dev/zero")
    (sub / "inside.yaml").symlink_to(sub / "ok.yaml")
    (sub / "more").symlink_to(outside, target_is_directory=True)
    found, skipped = files.yaml_files(sub)
    assert found == [sub / "inside.yaml", sub / "ok.yaml"]
    reasons = {Path(p.path).name: p.message for p in skipped}
    assert "out of the checked folder" in reasons["leak.yaml"]
    assert "out of the checked folder" in reasons["zero.yaml"]
    assert "symbolic link to a folder" in reasons["more"]


# --- through the validators ----------------------------------------------------------------------


@pytest.fixture
def hostile_tree(tmp_path: Path) -> Path:
    shutil.copytree(REPO_ROOT / "manifests", tmp_path / "manifests")
    shutil.copy(REPO_ROOT / "versions.toml", tmp_path / "versions.toml")
    bad = tmp_path / "manifests" / "bad"
    bad.mkdir()
    (bad / "bomb.yaml").write_text(alias_bomb())
    os.mkfifo(bad / "pipe.yaml")
    (bad / "dir.yaml").mkdir()
    (bad / "nul.yaml").write_bytes(b"a: 1\n\x00")
    return tmp_path


def test_check_tree_reports_each_hostile_file_and_still_checks_the_rest(hostile_tree: Path):
    findings = manifests.check_tree(hostile_tree, helm=False)
    yaml_failures = {f.file: f.message for f in findings if f.check == "yaml" and not f.ok}
    assert set(yaml_failures) == {
        "manifests/bad/bomb.yaml",
        "manifests/bad/pipe.yaml",
        "manifests/bad/dir.yaml",
        "manifests/bad/nul.yaml",
    }
    assert yaml_failures["manifests/bad/bomb.yaml"].startswith("manifests/bad/bomb.yaml:6: ")
    # The good files were read and every other check ran on them, and passed.
    assert all(f.ok for f in findings if f.check != "yaml"), [
        f for f in findings if not f.ok and f.check != "yaml"
    ]
    assert all(len(f.message) <= 2100 for f in findings)


def test_schema_messages_never_quote_a_huge_value(tmp_path: Path):
    shutil.copytree(REPO_ROOT / "manifests", tmp_path / "manifests")
    path = tmp_path / "manifests" / "bookstore" / "catalog.yaml"
    docs = list(yaml.safe_load_all(path.read_text()))
    docs[0]["spec"]["replicas"] = "9" * 200_000
    path.write_text(yaml.safe_dump_all(docs))
    schema = [f for f in manifests.check_tree(tmp_path, helm=False) if f.check == "schema"]
    assert not schema[0].ok and "spec/replicas" in schema[0].message
    assert len(schema[0].message) < 1000


def test_pss_names_every_unreadable_file_at_once(tmp_path: Path):
    (tmp_path / "bomb.yaml").write_text(alias_bomb())
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(pss.InputError) as caught:
        pss.load_objects([tmp_path])
    text = str(caught.value)
    assert f"{tmp_path / 'bomb.yaml'}:6: " in text and f"{tmp_path / 'dir.yaml'}: " in text


def test_offline_grading_of_a_hostile_submission_names_each_file(tmp_path: Path):
    # The manifests folder itself handed in. The grader copies regular files only (a FIFO is
    # never opened, a file whose aliases explode is not copied), then the validators read the
    # copy through the same hardened loader: an unparsable file with a non-UTF-8 name is named.
    from checks import roster

    folder = tmp_path / "class"
    sub = folder / "mallory"
    shutil.copytree(REPO_ROOT / "manifests", sub)
    (sub / "evil").mkdir()
    (sub / "evil" / "bomb.yaml").write_text(alias_bomb())
    os.mkfifo(sub / "evil" / "pipe.yaml")
    bad = Path(os.fsdecode(os.fsencode(sub / "evil") + b"/caf\xe9.yaml"))
    bad.write_text("a: [\n")
    (graded,) = grading.grade_offline(roster.class_entries(folder, want="dir"))
    assert graded.status == "graded", graded
    assert "evil/bomb.yaml (YAML aliases expand it past" in graded.note
    rows = graded.score["checkers"]
    schema = rows["static.schema"]["diagnosis"]
    assert not rows["static.schema"]["passed"]
    assert "caf\\udce9.yaml" in schema  # printable in any report, not a lone surrogate
    schema.encode("utf-8")
    assert "pipe.yaml" not in schema  # never opened, never copied
    assert all(rows[c]["passed"] for c in rows if c not in ("static.schema", "static.exercises"))


@pytest.mark.parametrize("kind", ["fifo", "oversize", "binary"])
def test_a_hostile_versions_toml_is_a_finding_and_the_repository_pins_are_used(tmp_path, kind):
    shutil.copytree(REPO_ROOT / "manifests", tmp_path / "manifests")
    own = tmp_path / "versions.toml"
    if kind == "fifo":
        os.mkfifo(own)
    elif kind == "oversize":
        with own.open("wb") as f:
            f.truncate(1 << 30)  # sparse: 1 GiB that costs no disk
    else:
        own.write_bytes(b"[kind]\x00\xff")
    findings = manifests.check_tree(tmp_path, helm=False)
    failed = [f for f in findings if not f.ok]
    assert [f.check for f in failed] == ["versions"], failed
    assert failed[0].message.startswith("versions.toml ") and "repository's own pins" in (
        failed[0].message
    )


def test_a_refused_values_file_is_not_called_missing(tmp_path: Path):
    shutil.copytree(REPO_ROOT / "manifests", tmp_path / "manifests")
    (tmp_path / "manifests" / "logging" / "alloy-values.yaml").write_text(alias_bomb())
    failed = [f for f in manifests.check_tree(tmp_path, helm=False) if not f.ok]
    messages = " | ".join(f.message for f in failed)
    assert "manifests/logging/alloy-values.yaml:6: aliases" in messages
    assert "could not be read (see its yaml finding)" in messages
    assert "is missing" not in messages


def test_aliases_that_repeat_a_long_text_are_a_bomb_too(tmp_path: Path):
    # Few nodes, but 20,000 x 200 KB = 4 GB of text for anything that prints or serialises it.
    path = tmp_path / "text-bomb.yaml"
    path.write_text("big: &t " + "x" * 200_000 + "\nlist: [" + ", ".join(["*t"] * 20_000) + "]\n")
    problem, peak = problem_and_peak(path)
    assert problem.line == 2 and "characters of text" in problem.message
    assert peak < 20 * 1024 * 1024


@pytest.mark.parametrize(
    "text",
    ["a: [" + "1," * (files.MAX_VALUES + 1) + "]\n", "---\n" * (files.MAX_VALUES // 2)],
    ids=["a-flow-list-of-tiny-values", "hundreds-of-thousands-of-empty-documents"],
)
def test_a_file_of_too_many_values_is_refused_before_parsing(tmp_path: Path, text: str):
    path = tmp_path / "many.yaml"
    path.write_text(text)
    problem, peak = problem_and_peak(path)
    assert (
        f"more than the {files.MAX_VALUES:,}" in problem.message and "split it" in problem.message
    )
    assert peak < 3 * len(text) + 1024 * 1024  # the text itself, no parsed nodes
