"""Who is in a class folder: unique, stable, file-safe ids; links and odd names as rows."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from checks import roster
from checks.roster import KUBECONFIG_SUFFIXES, class_entries, copy_submission, safe_id


def bytes_name(folder: Path, raw: bytes) -> Path:
    return Path(os.fsdecode(bytes(folder) + b"/" + raw))


def test_ids_are_printable_reversible_and_file_safe():
    assert safe_id("ada") == "ada"
    assert safe_id("José Núñez") == "José Núñez"  # readable UTF-8 stays as it is
    assert safe_id(os.fsdecode(b"j\xf6rg")) == "j%F6rg"  # Latin-1 bytes, not UTF-8
    assert safe_id("tab\there\nnl") == "tab%09here%0Anl"
    assert safe_id("100%") == "100%25"  # so "%F6" spelled by hand never meets a real byte
    assert safe_id("100%") != safe_id("100%25")
    long_a, long_b = "a" * 300 + "1", "a" * 300 + "2"
    assert safe_id(long_a) != safe_id(long_b)
    assert len(safe_id(long_a).encode()) <= roster.MAX_ID_BYTES
    assert safe_id(long_a) == safe_id(long_a)  # stable across runs


def test_stem_removes_one_known_extension():
    assert roster.stem("ada.kubeconfig", KUBECONFIG_SUFFIXES) == "ada"
    assert roster.stem("ada.yaml.yaml", KUBECONFIG_SUFFIXES) == "ada.yaml"
    assert roster.stem(".yaml", KUBECONFIG_SUFFIXES) == ".yaml"
    assert roster.stem("ada.v2", KUBECONFIG_SUFFIXES) == "ada.v2"


def test_entries_of_a_hostile_folder(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    for name in ("ada.yaml", "ada.kubeconfig", "Bob.yaml", "bob.yml", "cyd", ".DS_Store"):
        (folder / name).write_text("x")
    bytes_name(folder, b"\xff\xfe.yaml").write_text("x")
    (tmp_path / "elsewhere").write_text("x")
    (folder / "out.yaml").symlink_to(tmp_path / "elsewhere")
    (folder / "self.yaml").symlink_to(folder)  # the folder itself: not a file
    (folder / "in.yaml").symlink_to("cyd")
    (folder / "loop.yaml").symlink_to("loop.yaml")
    os.mkfifo(folder / "pipe.yaml")
    entries = {e.learner: e for e in class_entries(folder, want="file",
                                                   suffixes=KUBECONFIG_SUFFIXES)}  # fmt: skip
    assert {k: e.status for k, e in entries.items()} == {
        "ada.kubeconfig": "duplicate", "ada.yaml": "duplicate",
        "Bob.yaml": "duplicate", "bob.yml": "duplicate",  # one learner on a case-blind disk
        "cyd": "", "in": "", "%FF%FE": "",
        "out": "refused", "self": "refused", "loop": "error", "pipe": "error",
    }  # fmt: skip
    assert entries["in"].path.name == "in.yaml"  # never resolved: its own id, its own row
    assert "Copy the learner's file" in entries["out"].problem
    assert "keep one file per learner" in entries["ada.yaml"].problem


def test_a_full_name_that_equals_another_id_stays_unique(tmp_path):
    for name in ("ada.yaml", "ada.kubeconfig", "ada.yaml.yaml"):
        (tmp_path / name).write_text("x")
    ids = [e.learner for e in class_entries(tmp_path, want="file", suffixes=KUBECONFIG_SUFFIXES)]
    assert len(ids) == len(set(ids)) == 3


def test_submission_folders(tmp_path):
    (tmp_path / "ada").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "out").symlink_to("/etc", target_is_directory=True)
    entries = {e.learner: e.status for e in class_entries(tmp_path, want="dir")}
    assert entries == {"ada": "", "notes.txt": "error", "out": "refused"}


def test_copying_a_submission_follows_no_link_out_and_bounds_what_it_reads(tmp_path, monkeypatch):
    src, dest = tmp_path / "sub", tmp_path / "copy"
    (src / "manifests" / "app").mkdir(parents=True)
    (src / "manifests" / "app" / "a.yaml").write_text("kind: A\n")
    (src / "manifests" / "same.yaml").symlink_to("app/a.yaml")  # inside: copied as content
    (src / "manifests" / "passwd.yaml").symlink_to("/etc/passwd")
    (src / "manifests" / "etc").symlink_to("/etc", target_is_directory=True)
    (src / "manifests" / "big.yaml").write_bytes(b"#" * 50)
    bytes_name(src / "manifests", b"\xe9t\xe9.yaml").write_text("kind: B\n")
    monkeypatch.setattr(roster, "MAX_FILE_BYTES", 40)
    skipped = copy_submission(src, dest, only="manifests")
    assert sorted(skipped) == [
        "manifests/big.yaml (over 0 KiB)",
        "manifests/etc (a linked folder)",
        "manifests/passwd.yaml (a link out of the submission)",
    ]
    copied = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert copied == sorted(
        ["manifests/app/a.yaml", "manifests/same.yaml", os.fsdecode(b"manifests/\xe9t\xe9.yaml")]
    )
    assert not any(p.is_symlink() for p in dest.rglob("*"))


def test_copying_stops_at_the_file_limit(tmp_path, monkeypatch):
    src = tmp_path / "sub"
    src.mkdir()
    for i in range(5):
        (src / f"{i}.yaml").write_text("a: 1\n")
    monkeypatch.setattr(roster, "MAX_FILES", 3)
    assert copy_submission(src, tmp_path / "copy") == ["everything after 3 files"]
    assert len(list((tmp_path / "copy").iterdir())) == 3


@pytest.mark.parametrize("name", ["a:b.yaml", "-rf.yaml", "con.yaml", " spaced .yaml"])
def test_odd_but_valid_names_are_ordinary_learners(tmp_path, name):
    (tmp_path / name).write_text("x")
    [entry] = class_entries(tmp_path, want="file", suffixes=KUBECONFIG_SUFFIXES)
    assert entry.status == "" and entry.learner == name.removesuffix(".yaml")


def test_a_yaml_alias_bomb_is_not_copied(tmp_path):
    src = tmp_path / "sub"
    src.mkdir()
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 12):
        prev = chr(ord("a") + i - 1)
        lines.append(f"{chr(ord('a') + i)}: &{chr(ord('a') + i)} [{', '.join(['*' + prev] * 9)}]")
    (src / "bomb.yaml").write_text("\n".join(lines) + "\n")
    (src / "ok.yaml").write_text("base: &base {a: 1}\nother:\n  <<: *base\n")
    skipped = copy_submission(src, tmp_path / "copy")
    assert skipped == ["bomb.yaml (YAML aliases expand it past 1,000,000 nodes)"]
    assert [p.name for p in (tmp_path / "copy").iterdir()] == ["ok.yaml"]
