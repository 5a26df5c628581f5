"""The one way every validator reads a file: hardened, because the files come from learners.

The grader runs the validators over a whole class's submissions, so one hostile or broken file
must cost one clear error naming it, never a hang, a memory blow-up or a traceback:

- only regular files are opened, and only up to `MAX_FILE_BYTES` (16 MiB): a FIFO, a device
  (`/dev/zero`), a socket, a directory named `x.yaml`, a symlink loop or an oversize file is
  reported from `stat` without being read (and the open is non-blocking, so a file swapped for a
  FIFO in between cannot hang it either);
- text must be UTF-8 without NUL bytes: a binary file is one error naming the file and offset;
- a file of more than `MAX_VALUES` (500k) values, estimated from its separators, is refused
  before parsing: PyYAML holds ~350 bytes per value;
- YAML is parsed by PyYAML's safe loader (libyaml when present), then every document's node
  graph is measured before any value is built: aliases may add at most `MAX_ALIAS_NODES` (100k)
  nodes and `MAX_ALIAS_CHARS` (1M) characters of text to a document (a 1 KB "billion laughs"
  bomb would add 10^9 nodes), may not refer to the value
  that holds them, and no document nests deeper than `MAX_DEPTH` (100). The graph is walked
  once with shared sub-results, so the check is linear in the file and a bomb is refused in
  milliseconds with its file and line;
- every message is clipped (`clip`): a value from a file is never printed whole.

Directory walks (`yaml_files`) do not follow symbolic links to directories and do not read a
linked file that resolves outside the folder being checked (a submission cannot make the grader
read the grader's own files); both are reported.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_VALUES = 500_000  # estimated values per file (PyYAML holds ~350 bytes per parsed node)
MAX_ALIAS_NODES = 100_000
MAX_ALIAS_CHARS = 1_000_000
MAX_DEPTH = 100
MESSAGE_LIMIT = 300  # characters of any one value quoted in a message
YAML_SUFFIXES = (".yaml", ".yml")

# libyaml is ~10x faster than the pure-Python scanner; both build the same nodes.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class FileProblem(Exception):
    """A file the validators will not (or cannot) read, with where and why."""

    def __init__(self, path: str | os.PathLike[str], message: str, line: int | None = None):
        self.path = os.fspath(path)
        self.line = line
        self.message = message
        super().__init__(str(self))

    @property
    def where(self) -> str:
        name = clip(self.path)
        return f"{name}:{self.line}" if self.line else name

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def clip(text: Any, limit: int = MESSAGE_LIMIT) -> str:
    """`text` as valid Unicode of at most about `limit` characters, saying how much was cut.

    A file name that is not UTF-8 reaches Python as lone surrogates, which every UTF-8 writer
    (a report file, a JSON dump, a terminal) refuses: they become visible `\\udcXX` escapes."""
    text = text if isinstance(text, str) else str(text)
    if not text.isascii():
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def safe_output() -> None:
    """Let stdout/stderr print any file name under any locale (`LC_ALL=C`,
    `PYTHONIOENCODING=utf-8:strict`): a name that is not valid UTF-8 reaches Python as lone
    surrogates, which a strict encoder refuses; print those as backslash escapes instead."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


# --- bytes and text ---------------------------------------------------------------------------


def _kind(mode: int) -> str | None:
    """None for a regular file, else what it is."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _refuse(path: str | os.PathLike[str], st: os.stat_result, limit: int) -> None:
    kind = _kind(st.st_mode)
    if kind is not None:
        raise FileProblem(path, f"is {kind}, not a regular file; it was not opened")
    if st.st_size > limit:
        raise FileProblem(
            path,
            f"is {st.st_size:,} bytes, more than the {limit:,} the validators read; "
            "it was not read (split it, or check that it is the file you meant)",
        )


def _os_problem(path: str | os.PathLike[str], e: OSError) -> FileProblem:
    if e.errno == errno.ELOOP:
        return FileProblem(path, "is a symbolic link that points (eventually) at itself")
    return FileProblem(path, f"cannot be read: {e.strerror or e}")


def read_bytes(path: str | os.PathLike[str], limit: int = MAX_FILE_BYTES) -> bytes:
    """The content of a regular file of at most `limit` bytes; else FileProblem."""
    try:
        _refuse(path, os.stat(path), limit)
        # O_NONBLOCK: had the file been replaced by a FIFO since the stat, open still returns.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise _os_problem(path, e) from None
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(f.fileno())
        _refuse(path, size, limit)
        # Sized reads (read(limit) would allocate `limit` bytes up front); a file that grew
        # since the stat is still cut off at the limit.
        data = f.read(size.st_size + 1)
        if len(data) > size.st_size:
            data += f.read(limit + 1 - len(data))
    if len(data) > limit:
        raise FileProblem(path, f"is more than the {limit:,} bytes the validators read")
    return data


def decode(data: bytes, path: str | os.PathLike[str]) -> str:
    """UTF-8 text (a BOM is dropped); NUL bytes or other encodings are one clear error."""
    nul = data.find(b"\0")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise FileProblem(
            path, f"holds a NUL byte at offset {nul}: a binary file, not YAML text", line
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise FileProblem(
            path,
            f"is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); save it as UTF-8",
            line,
        ) from None


def read_text(path: str | os.PathLike[str], limit: int = MAX_FILE_BYTES) -> str:
    return decode(read_bytes(path, limit), path)


# --- YAML -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Document:
    """One YAML document of a file: its value and the line it starts on (1-based)."""

    value: Any
    line: int


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


class _Measure:
    """One document's node graph, walked once: a node reached again through an alias reuses
    its measured (expanded nodes, expanded text, height), so the walk is linear in the file
    however far the aliases expand. Recursion is bounded by MAX_DEPTH.

    Text is bounded as well as nodes: a list of 50,000 aliases to one 10 MB string is few nodes
    but 500 GB once anything prints or serialises it."""

    def __init__(self, name: str | os.PathLike[str], text_length: int) -> None:
        self.name = name
        # id(node) -> (expanded nodes, expanded scalar characters, height)
        self.sizes: dict[int, tuple[int, int, int]] = {}
        self.open: set[int] = set()  # the nodes on the path from the root
        self.seen = 0  # nodes walked so far
        # A scalar's value is never longer than its source, so without aliases a document
        # holds at most as much text as the file.
        self.max_chars = text_length + MAX_ALIAS_CHARS

    def problem(self, node: yaml.Node, message: str) -> FileProblem:
        return FileProblem(self.name, message, _line(node))

    def bomb(self, node: yaml.Node, what: str) -> FileProblem:
        return self.problem(
            node,
            f"aliases (*name) expand this value by more than {what}; refused unread (an alias "
            "bomb?). Write the values out instead",
        )

    def walk(self, node: yaml.Node, depth: int) -> tuple[int, int, int]:
        if id(node) in self.open:
            raise self.problem(node, "an alias refers to the value that contains it (a loop)")
        if depth > MAX_DEPTH:
            raise self.problem(node, f"values nest more than {MAX_DEPTH} levels deep; refused")
        self.open.add(id(node))
        kids = [n for pair in node.value for n in pair] if type(node) is _MAPPING else node.value
        size, chars, height = 1, 0, 0
        for kid in kids:
            if type(kid) is _SCALAR:  # most nodes: counted inline, for speed
                size += 1
                chars += len(kid.value)
                self.seen += 1
                continue
            kid_size, kid_chars, kid_height = self.sizes.get(id(kid)) or self.walk(kid, depth + 1)
            size += kid_size
            chars += kid_chars
            height = max(height, kid_height)
        self.open.discard(id(node))
        self.seen += 1
        self.sizes[id(node)] = (size, chars, height + 1)
        # Without aliases a value has at most as many nodes as have been walked so far.
        if size > self.seen + MAX_ALIAS_NODES:
            raise self.bomb(node, f"{MAX_ALIAS_NODES:,} nodes")
        if chars > self.max_chars:
            raise self.bomb(node, f"{MAX_ALIAS_CHARS:,} characters of text")
        if depth + height > MAX_DEPTH:  # deep through an alias to a deep value
            raise self.problem(node, f"values nest more than {MAX_DEPTH} levels deep; refused")
        return size, chars, height + 1


_SCALAR, _MAPPING = yaml.ScalarNode, yaml.MappingNode


def measure(root: yaml.Node, name: str | os.PathLike[str], text_length: int) -> None:
    """Refuse a document whose aliases expand it by more than MAX_ALIAS_NODES nodes or
    MAX_ALIAS_CHARS characters, that refers to itself, or that nests deeper than MAX_DEPTH."""
    if type(root) is not _SCALAR:
        _Measure(name, text_length).walk(root, 1)


def _yaml_problem(name: str | os.PathLike[str], e: yaml.YAMLError) -> FileProblem:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    problem = getattr(e, "problem", None) or str(e)
    column = f" at column {mark.column + 1}" if mark is not None else ""
    return FileProblem(
        name,
        f"not valid YAML{column}: {clip(problem)}. Fix the indentation or quoting there "
        "(a tab, or an unquoted `: ` inside a value, are the usual causes)",
        mark.line + 1 if mark is not None else None,
    )


# Every value (node) but the first needs one of these before it: an upper bound on the count.
_SEPARATORS = (",", "\n", ":", "-", "[", "{")


def _too_many_values(text: str, name: str | os.PathLike[str]) -> None:
    """Refuse, before parsing, a file of more values than MAX_VALUES: a 4 MB flow list of
    `1,1,1,...` would make 2 million nodes, 700 MB and 17 s inside the parser."""
    estimate = sum(text.count(c) for c in _SEPARATORS)
    if estimate > MAX_VALUES:
        raise FileProblem(
            name,
            f"holds about {estimate:,} values, more than the {MAX_VALUES:,} the validators read "
            "from one file; it was not parsed (split it into several files)",
        )


def parse_yaml(text: str, name: str | os.PathLike[str]) -> list[Document]:
    """Every document of a YAML text (empty documents included as None), measured first."""
    _too_many_values(text, name)
    loader = _LOADER(text)
    docs: list[Document] = []
    node: yaml.Node | None = None
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            measure(node, name, len(text))
            docs.append(Document(loader.construct_document(node), _line(node)))
    except FileProblem:
        raise
    except yaml.YAMLError as e:
        raise _yaml_problem(name, e) from None
    except (ValueError, TypeError, OverflowError, RecursionError) as e:
        # e.g. an integer of more than 4300 digits, which Python refuses to convert
        line = _line(node) if node is not None else None
        raise FileProblem(name, f"a value cannot be read: {clip(e)}", line) from None
    except Exception as e:  # noqa: BLE001 - PyYAML's own bugs on hostile input, e.g. an
        # UnboundLocalError from libyaml's composer on some self-referring aliases
        raise FileProblem(name, f"the YAML loader failed on it ({type(e).__name__})") from None
    finally:
        loader.dispose()
    return docs


def yaml_documents(path: str | os.PathLike[str]) -> list[Document]:
    """Every document of one YAML file, through every guard above."""
    return parse_yaml(read_text(path), path)


def yaml_mapping(path: str | os.PathLike[str], what: str = "this file") -> dict[str, Any]:
    """The one mapping a values-style file holds ({} when empty)."""
    docs = [d for d in yaml_documents(path) if d.value is not None]
    if not docs:
        return {}
    if len(docs) > 1:
        raise FileProblem(
            path, f"{what} must be one YAML document, found {len(docs)}", docs[1].line
        )
    if not isinstance(docs[0].value, dict):
        kind = type(docs[0].value).__name__
        raise FileProblem(path, f"{what} must be a mapping, found a {kind}", docs[0].line)
    return docs[0].value


# --- walking folders --------------------------------------------------------------------------


def _within(path: Path, base: Path) -> bool:
    try:
        return path.resolve().is_relative_to(base)
    except (OSError, RuntimeError):  # a loop: reported when the file is read
        return True


def yaml_files(
    base: str | os.PathLike[str], suffixes: tuple[str, ...] = YAML_SUFFIXES
) -> tuple[list[Path], list[FileProblem]]:
    """Every entry under `base` whose name ends in a suffix, sorted, and what was not followed.

    Entries are returned whatever they are (a directory named `x.yaml` included), so that the
    reader reports them; `base` itself may be a symbolic link (the grader links a submission).
    """
    base = Path(base)
    real = base.resolve()
    found: list[Path] = []
    skipped: list[FileProblem] = []
    for folder, dirs, names in os.walk(base, followlinks=False):
        here = Path(folder)
        for entry in dirs:
            path = here / entry
            if path.is_symlink():
                skipped.append(
                    FileProblem(
                        path, "is a symbolic link to a folder; not followed (copy the files in)"
                    )
                )
            elif entry.endswith(suffixes):
                found.append(path)  # a folder named x.yaml: the reader reports it
        for entry in names:
            path = here / entry
            if not entry.endswith(suffixes):
                continue
            if path.is_symlink() and not _within(path, real):
                skipped.append(
                    FileProblem(path, "is a symbolic link out of the checked folder; not read")
                )
                continue
            found.append(path)
    return sorted(found), skipped


def iter_yaml_files(paths: list[str | os.PathLike[str]]) -> Iterator[Path | FileProblem]:
    """Files named on a command line, and the YAML files of folders named there."""
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found, skipped = yaml_files(path)
            yield from skipped
            yield from found
        elif os.path.lexists(path):
            yield path
        else:
            yield FileProblem(path, "no such file or directory")
