"""Who is in a class folder: one entry per learner, each with a unique, stable, file-safe id.

The id rule: the entry's name with one known extension removed (`ada.kubeconfig` -> `ada`);
bytes that are not UTF-8, control characters, `%` and path separators are written as `%XX`, so
the id is printable, reversible and safe as a file name on every system. When two entries give
the same id (`ada.kubeconfig` beside `ada.yaml`), neither is graded: each keeps its full name as
its id and becomes a `duplicate` row, because only the instructor knows which file is right.
An entry is never resolved to decide its id, so two learners' symlinks to one file stay two rows.

Nothing here follows a symbolic link out of the folder it was found in: a link that leaves the
class folder is a `refused` row; inside a submission, such a link is skipped and named.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

import yaml

KUBECONFIG_SUFFIXES = (".kubeconfig", ".yaml", ".yml", ".conf", ".config", ".json")
MAX_ID_BYTES = 120  # room for `.json`/`.txt`/`.log` under the 255-byte file-name limit
MAX_FILE_BYTES = 1 << 20
MAX_FILES = 2000
# A YAML "billion laughs" file is small but its aliases expand into more nodes than any checker
# can walk; a real manifest or values file has a few thousand nodes at most.
MAX_NODES = 1_000_000


@dataclass(frozen=True)
class Entry:
    learner: str  # unique in the class, printable, safe as a file name
    path: Path  # the entry as found in the folder (never resolved)
    status: str = ""  # "" when it can be graded; else refused | duplicate | error
    problem: str = ""  # why it cannot be graded, and what to do


def safe_id(name: str) -> str:
    """A printable, file-safe, reversible spelling of a file name (see the module docstring)."""
    raw = os.fsencode(name)
    out = []
    for ch in raw.decode("utf-8", "surrogateescape"):
        if "\udc80" <= ch <= "\udcff":  # a byte that is not UTF-8
            out.append(f"%{ord(ch) - 0xDC00:02X}")
        elif ch == "%" or ch in "/\\" or not ch.isprintable():
            out.extend(f"%{b:02X}" for b in ch.encode())
        else:
            out.append(ch)
    text = "".join(out)
    if len(text.encode()) > MAX_ID_BYTES:
        digest = hashlib.sha256(raw).hexdigest()[:10]
        text = text.encode()[: MAX_ID_BYTES - 11].decode("utf-8", "ignore") + "~" + digest
    return text


def stem(name: str, suffixes: tuple[str, ...]) -> str:
    for suffix in suffixes:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def class_entries(folder: Path, *, want: str, suffixes: tuple[str, ...] = ()) -> list[Entry]:
    """The learners in `folder`: `want` "file" (kubeconfigs, score files) or "dir" (submissions).

    Hidden entries (`.DS_Store`, `.git`) are skipped; everything else is a row.
    """
    root = Path(os.path.realpath(folder))
    names = sorted(os.listdir(folder), key=os.fsencode)
    found: list[tuple[str, Path, str, str]] = []
    for name in names:
        if name.startswith("."):
            continue
        path = Path(folder) / name
        status, problem = _entry_problem(path, root, want)
        found.append((stem(name, suffixes), path, status, problem))
    by_id: dict[str, list[int]] = {}
    for i, (who, *_rest) in enumerate(found):
        by_id.setdefault(safe_id(who).casefold(), []).append(i)
    entries, taken = [], set()
    for i, (who, path, status, problem) in enumerate(found):
        twins = by_id[safe_id(who).casefold()]
        learner = safe_id(who)
        if len(twins) > 1:
            others = ", ".join(safe_id(found[j][1].name) for j in twins if j != i)
            learner = safe_id(path.name)
            status, problem = (
                "duplicate",
                (
                    f"{learner} and {others} are the same learner {safe_id(who)!r}: keep one file "
                    "per learner (the id is the file name without its extension) and grade again"
                ),
            )
        while learner.casefold() in taken:  # a full name equal to another entry's id
            learner += "~"
        taken.add(learner.casefold())
        entries.append(Entry(learner, path, status, problem))
    return entries


def _entry_problem(path: Path, root: Path, want: str) -> tuple[str, str]:
    try:
        info = os.lstat(path)
    except OSError as e:
        return "error", f"cannot read the entry: {e.strerror}"
    if stat.S_ISLNK(info.st_mode):
        target = Path(os.path.realpath(path))
        if not target.is_relative_to(root) or target == root:
            return "refused", (
                "a symbolic link that leaves the class folder; the grader follows none. "
                "Copy the learner's file (or folder) in instead of linking it"
            )
        try:
            info = os.stat(path)
        except OSError as e:
            return "error", f"a symbolic link that leads to nothing usable: {e.strerror}"
    if want == "file" and not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        return "error", f"{kind}: put one file per learner here"
    if want == "dir" and not stat.S_ISDIR(info.st_mode):
        return "error", (
            "a file, not a folder: unpack each submission into a folder named after the learner"
        )
    return "", ""


def copy_submission(src: Path, dest: Path, *, only: str | None = None) -> list[str]:
    """Copy the regular files of a submission into `dest` without following any link out of it.

    `only` limits the copy to one sub-folder (e.g. "manifests"). Returns what was skipped and
    why (links leaving the submission, oversized files, too many files), for the learner's row.
    """
    root = Path(os.path.realpath(src))
    start = root / only if only else root
    skipped: list[str] = []
    count = 0
    if start.is_symlink():
        return [f"{only} (a linked folder)"]
    if not start.is_dir():
        return skipped
    for here, dirs, files in os.walk(start, followlinks=False):
        here_path = Path(here)
        for d in list(dirs):
            if (here_path / d).is_symlink():
                dirs.remove(d)  # never descended: a linked folder could loop or leave
                skipped.append(f"{_rel(here_path / d, root)} (a linked folder)")
        for name in files:
            path = here_path / name
            rel = _rel(path, root)
            real = Path(os.path.realpath(path))
            if path.is_symlink() and not real.is_relative_to(root):
                skipped.append(f"{rel} (a link out of the submission)")
                continue
            if not real.is_file():
                continue
            if real.stat().st_size > MAX_FILE_BYTES:
                skipped.append(f"{rel} (over {MAX_FILE_BYTES // 1024} KiB)")
                continue
            if real.suffix in (".yaml", ".yml") and _expanded_size(real) > MAX_NODES:
                skipped.append(f"{rel} (YAML aliases expand it past {MAX_NODES:,} nodes)")
                continue
            count += 1
            if count > MAX_FILES:
                skipped.append(f"everything after {MAX_FILES} files")
                return skipped
            target = dest / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(real, target)
    return skipped


def _expanded_size(path: Path) -> int:
    """How many nodes a YAML file has once every alias is expanded: computed on the composed
    graph (aliases stay shared references), memoised per node, so in linear time."""
    sizes: dict[int, int] = {}

    def size(node) -> int:
        if id(node) not in sizes:
            sizes[id(node)] = 0  # a cycle counts once
            if isinstance(node, yaml.MappingNode):
                children = [n for pair in node.value for n in pair]
            elif isinstance(node, yaml.SequenceNode):
                children = node.value
            else:
                children = []
            sizes[id(node)] = 1 + sum(size(c) for c in children)
        return sizes[id(node)]

    try:
        return sum(size(doc) for doc in yaml.compose_all(path.read_bytes()) if doc is not None)
    except (yaml.YAMLError, RecursionError):
        return 0  # not YAML at all: the validators say so, with the line


def shown(path: Path | str) -> str:
    """A path as text for a report: each part spelled as `safe_id` does, `/` kept."""
    return safe_id(str(path)).replace("%2F", "/")


def _rel(path: Path, root: Path) -> str:
    return shown(path.relative_to(root))
