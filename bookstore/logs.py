"""Logging for the bookstore: one JSON object per line on stdout, shaped like Go's slog.

Every line the process writes goes through one chain of plain functions:

    level filter -> sampling -> exception fields -> redaction -> request-scoped ids -> JSON
    -> one write

Sampling runs before redaction and rendering because a dropped line needs neither; redaction
runs after the exception fields are built, so a secret inside an exception message is masked
too. The request-scoped ids (trace, span and request ids, validated when the request came in)
join after redaction: they are ours, and a line's own field of the same name wins.
Standard-library logging (uvicorn's server messages, asyncio, httpx) and Python warnings are
bridged into the same chain, so nothing reaches stdout in another format.

Keys follow the contract in `log-schema.json`: `time` (RFC 3339, UTC, `Z`), `level` (`DEBUG`,
`INFO`, `WARN`, `ERROR`: slog's spelling, not Python's `WARNING`), `msg`, `service`, then the
fields of the event. Each line is written and flushed at once, so a crash loses nothing and the
container runtime sees lines as they happen.
"""

from __future__ import annotations

import contextvars
import io
import logging
import os
import re
import select
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, TextIO

import orjson

from bookstore import redaction, sampling

LEVELS = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "ERROR": logging.ERROR,
}
LEVEL_ALIASES = {"WARNING": "WARN", "CRITICAL": "ERROR", "FATAL": "ERROR"}
EventDict = dict[str, Any]
# The logger's method names -> slog level names.
_METHOD_LEVELS = {
    "debug": "DEBUG",
    "info": "INFO",
    "warning": "WARN",
    "warn": "WARN",
    "error": "ERROR",
    "exception": "ERROR",
    "critical": "ERROR",
    "fatal": "ERROR",
}
_FIRST_KEYS = ("time", "level", "msg", "service")

# The request-scoped fields (trace ids, request id): one dict per request, in a context variable
# so that concurrent requests on one event loop never see each other's ids.
_request_fields: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "bookstore_request_fields", default=None
)


FORMATS = ("json", "text")


def parse_format(value: str | None) -> str:
    """`LOG_FORMAT`: `json` (the contract, default) or `text`, the plain lines many services
    still write and that the lab's first exercise asks the learner to turn back into JSON."""
    name = (value or "json").strip().lower()
    if name not in FORMATS:
        raise ValueError(f"LOG_FORMAT={value!r} is not one of {', '.join(FORMATS)}")
    return name


def parse_level(value: str | None) -> str:
    """`LOG_LEVEL` as a slog level name; raises ValueError naming the accepted values."""
    name = (value or "INFO").strip().upper()
    name = LEVEL_ALIASES.get(name, name)
    if name not in LEVELS:
        raise ValueError(f"LOG_LEVEL={value!r} is not one of DEBUG, INFO, WARN, ERROR")
    return name


_second_cache: tuple[int, str] = (-1, "")


def rfc3339(epoch: float | None = None) -> str:
    """`2026-01-02T03:04:05.123456Z`: RFC 3339 in UTC with a `Z`, microsecond precision (now,
    when `epoch` is not given)."""
    global _second_cache
    micros = time.time_ns() // 1000 if epoch is None else round(epoch * 1_000_000)
    seconds, fraction = divmod(micros, 1_000_000)
    cached_second, prefix = _second_cache
    if cached_second != seconds:  # formatting the date is the slow part: once per second
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(seconds))
        _second_cache = (seconds, prefix)
    return f"{prefix}{fraction:06d}Z"


def _with_request_fields(fields: EventDict) -> EventDict:
    """The request-scoped fields added to a line's own (its own fields win)."""
    request = _request_fields.get()
    if request:
        for key, value in request.items():
            if key not in fields:
                fields[key] = value
    return fields


class LineWriter:
    """Writes one rendered line at once, under a lock.

    The lock keeps lines whole when a thread (a warning, an excepthook) logs at the same time
    as the event loop; every line is written through at once (the contract: no line waits in
    a buffer). A stream backed by a file descriptor (stdout in production) gets the line's
    bytes with one `os.write`, past the text layer (flushed first, in case something printed
    to it); any other stream (a test's StringIO) is written and flushed.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._fd = _descriptor(stream)

    def write(self, line: bytes) -> None:
        """Write one line (`line` ends with its newline), all of it, at once."""
        with self._lock:
            if self._fd is None:
                self._stream.write(line.decode("utf-8"))
                self._stream.flush()
                return
            # Text printed to the stream itself (a `print`) goes out first: left in its buffer,
            # it would come out after this line, or glued to its front if half of it was out.
            self._stream.flush()
            try:
                written = os.write(self._fd, line)
            except BlockingIOError:
                written = 0
            while written < len(line):  # a pipe may take a long line in parts
                line = line[written:]
                written = _write_when_ready(self._fd, line)


def _write_when_ready(fd: int, data: bytes) -> int:
    """`os.write`, waiting while a full pipe refuses it (0 bytes written then).

    A descriptor left non-blocking by whoever started us raises instead of waiting when the
    pipe is full: the line would lose its tail and the next line would be glued to its front.
    """
    try:
        return os.write(fd, data)
    except BlockingIOError:
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        poller.poll()
        return 0


def _descriptor(stream: TextIO) -> int | None:
    """The file descriptor to write lines to directly, or None to use the stream's own write.

    Only a plain text file over a descriptor qualifies (`LineWriter.write` flushes its text
    layer before each line, so nothing written there is overtaken).
    """
    if not isinstance(stream, io.TextIOWrapper):
        return None
    try:
        return stream.fileno()
    except (OSError, ValueError):  # io.UnsupportedOperation is an OSError; ValueError: closed
        return None


def _exception_fields(event: EventDict) -> EventDict:
    """`exc_info` -> `error`, `error_type`, `stack` (one string: a trace never spans lines)."""
    exc_info = event.pop("exc_info", None)
    if not exc_info:
        return event
    if exc_info is True:
        exc_info = sys.exc_info()
    elif isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if exc_info[0] is None:
        return event
    exc = exc_info[1]
    event.setdefault("error", str(exc) or type(exc).__name__)
    event.setdefault("error_type", type(exc).__name__)
    event["stack"] = "".join(traceback.format_exception(*exc_info)).rstrip()
    return event


_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE
_INT64 = range(-(2**63), 2**64)


# Characters that are legal inside a JSON string but that some line readers treat as line
# breaks (Python's str.splitlines, some editors): escaped, so one event stays one line for every
# reader. orjson already escapes everything below U+0020.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _text_safe(value: Any) -> Any:
    """`value` with what orjson refuses made writable (huge integers, lone surrogates, odd keys)."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {
            _text_safe(k if isinstance(k, str) else str(k)): _text_safe(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_text_safe(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and value not in _INT64:
        return str(value)
    return value


def dumps(line: dict[str, Any]) -> bytes:
    """One compact JSON object and its newline, on one line for any reader (UTF-8).

    orjson, because the stdlib encoder alone would eat most of the 10 µs a line may cost; it
    also writes NaN as null (valid JSON) where the stdlib writes `NaN`. It refuses integers
    beyond 64 bits and strings with lone surrogates, both of which a client can put in a body
    or header we log: those lines take a slower path that writes them as text.
    """
    try:
        data = orjson.dumps(line, default=str, option=_ORJSON_OPTIONS)
    except TypeError:
        data = orjson.dumps(_text_safe(line), default=str, option=_ORJSON_OPTIONS)
    if data.isascii():
        return data
    return data.decode("utf-8").translate(_LINE_BREAKS).encode("utf-8")


def _renderer(service: str) -> Callable[[str, str, EventDict], bytes]:
    """The JSON renderer: (slog level, message, fields) -> the line's bytes."""

    def render(level: str, message: str, fields: EventDict) -> bytes:
        line = {"time": rfc3339(), "level": level, "msg": message, "service": service}
        # A field named like a contract key must not overwrite it: keep it under another name.
        if "time" in fields or "msg" in fields or "service" in fields or "level" in fields:
            fields.pop("service", None)
            fields.pop("level", None)
            for key in ("time", "msg"):
                if key in fields:
                    fields[f"field_{key}"] = fields.pop(key)
        line.update(fields)
        try:
            return dumps(line)
        except Exception as exc:  # e.g. a field whose __str__ raises: say so, never crash
            return dumps(
                {
                    **{key: line[key] for key in _FIRST_KEYS},
                    "level": "ERROR",
                    "msg": "a log line could not be rendered",
                    "lost_msg": message,
                    "error": f"{exc}"[:200],
                    "error_type": type(exc).__name__,
                }
            )

    return render


def _one_line(value: Any) -> str:
    """A value as text that cannot start a new line (a stack trace keeps its `\\n`s escaped)."""
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text.replace("\r", "\\r").replace("\n", "\\n").translate(_LINE_BREAKS)


def _text_renderer(service: str) -> Callable[[str, str, EventDict], bytes]:
    """`LOG_FORMAT=text`: `<time> <LEVEL> <service> <msg> key=value ...` on one line. Fine for
    a person at a terminal; for Loki every field is now text to be cut out with a regex."""
    as_json = _renderer(service)

    def render(level: str, message: str, fields: EventDict) -> bytes:
        line = orjson.loads(as_json(level, message, fields))  # the same fields, already safe
        head = " ".join(_one_line(line.pop(key)) for key in ("time", "level", "service"))
        text = _one_line(line.pop("msg"))
        rest = " ".join(f"{key}={_one_line(value)}" for key, value in line.items())
        return f"{head} {text} {rest}".rstrip().encode("utf-8") + b"\n"

    return render


class _Chain(NamedTuple):
    """What every line goes through, set by `configure`."""

    minimum: int  # the lowest level written (logging's numbers)
    keep: Callable[[str | None], bool]  # the sampling decision, from a trace id
    render: Callable[[str, str, EventDict], bytes]
    writer: LineWriter


_chain: _Chain | None = None


def configure(
    service: str,
    *,
    level: str = "INFO",
    sample_rate: float = 1.0,
    stream: TextIO | None = None,
    keep_trace: Callable[[str | None], bool] | None = None,
    log_format: str = "json",
) -> Logger:
    """Set up the chain for this process and bridge stdlib logging and warnings into it.

    `keep_trace` decides sampling (default: `sampling.by_trace_id(sample_rate)`); tests pass
    their own. `log_format` "text" swaps only the last step, the renderer (LOG_FORMAT).
    Calling this again replaces the previous set-up (tests do).
    """
    global _chain
    level = parse_level(level)
    renderer = _text_renderer if parse_format(log_format) == "text" else _renderer
    _chain = _Chain(
        minimum=LEVELS[level],
        keep=keep_trace or sampling.by_trace_id(sample_rate),
        render=renderer(service),
        writer=LineWriter(stream if stream is not None else sys.stdout),
    )
    _bridge_stdlib(LEVELS[level])
    _bridge_uncaught()
    return _ROOT


def _current_chain() -> _Chain:
    if _chain is None:
        configure("bookstore")
    assert _chain is not None
    return _chain


def _emit(levelno: int, message: Any, fields: EventDict) -> None:
    """One line through the chain, from its level on (`fields` is the line's own dict)."""
    chain = _chain or _current_chain()
    if levelno < chain.minimum:
        return
    level = _LEVEL_NAMES[levelno]
    if _sampled_out(chain, level, fields):
        return
    if "exc_info" in fields:
        fields = _exception_fields(fields)
    try:
        text = message if type(message) is str else str(message)
    except Exception as exc:  # a message object whose str() fails: the line is still written
        text = f"[UNREADABLE: {type(exc).__name__}]"
    # The line's own fields are redacted; the request's ids, added after, are ours and validated.
    fields = _with_request_fields(redaction.redact_event(fields))
    chain.writer.write(chain.render(level, redaction.redact_text(text), fields))


_LEVEL_NAMES = {number: name for name, number in LEVELS.items()}


def _sampled_out(chain: _Chain, level: str, fields: EventDict) -> bool:
    """A successful request line whose trace (its own `trace_id`, else the request's) the
    sampling rule drops; every other line is kept."""
    if "status" not in fields or not sampling.is_sampleable(level, fields):
        return False
    trace_id = fields.get("trace_id") or (_request_fields.get() or {}).get("trace_id")
    return not chain.keep(trace_id)


class Logger:
    """`log.info("order placed", order_id=..., qty=2)`: a message and fields, one line each.

    Our own few lines rather than a logging library's dispatch: every line pays for each call
    between `log.info(...)` and the write, and this is all of it. `bind` returns a logger that
    adds fields to each of its lines; a message with `%` arguments is formatted first. The
    message is positional-only, so a field may be called `message` (structlog allowed it).
    """

    __slots__ = ("_bound",)

    def __init__(self, bound: Mapping[str, Any] | None = None) -> None:
        self._bound = dict(bound or {})

    def bind(self, **fields: Any) -> Logger:
        return Logger({**self._bound, **fields})

    def _line(self, levelno: int, message: Any, args: tuple[Any, ...], fields: EventDict) -> None:
        chain = _chain
        if chain is not None and levelno < chain.minimum:
            return  # a filtered line (DEBUG at INFO) costs nothing more
        if self._bound:
            fields = {**self._bound, **fields}
        if args:
            try:
                message = message % args
            except (TypeError, ValueError, KeyError):  # a wrong format must not lose the line
                fields.setdefault("args", [str(arg) for arg in args])
        _emit(levelno, message, fields)

    def debug(self, message: Any, /, *args: Any, **fields: Any) -> None:
        self._line(logging.DEBUG, message, args, fields)

    def info(self, message: Any, /, *args: Any, **fields: Any) -> None:
        self._line(logging.INFO, message, args, fields)

    def warning(self, message: Any, /, *args: Any, **fields: Any) -> None:
        self._line(logging.WARNING, message, args, fields)

    def error(self, message: Any, /, *args: Any, **fields: Any) -> None:
        self._line(logging.ERROR, message, args, fields)

    def exception(self, message: Any, /, *args: Any, **fields: Any) -> None:
        """An ERROR line with the exception being handled (`error`, `error_type`, `stack`)."""
        fields.setdefault("exc_info", True)
        self._line(logging.ERROR, message, args, fields)

    warn = warning
    critical = fatal = error


_ROOT = Logger()
_REQUEST_MESSAGE = "request completed"


def request_line(level: str, /, **fields: Any) -> None:
    """Write the request line (`level` is a logger method name: info, warning, ...).

    The most frequent line, so it skips what it does not need: every field of it is one the
    services fill in themselves (route template, status, duration, validated ids; an unknown
    HTTP method is scanned before it gets here), so it needs no redaction. The level filter,
    request fields, sampling, renderer and writer are the very same as every other line's.
    Any other field (a `reason` built from request data) sends the line through the whole
    chain instead.
    """
    chain = _chain or _current_chain()
    levelno = LEVELS[_METHOD_LEVELS[level]]
    if levelno < chain.minimum:
        return
    if not redaction.OWN_FIELDS.issuperset(fields):
        _emit(levelno, _REQUEST_MESSAGE, fields)
        return
    name = _LEVEL_NAMES[levelno]
    if _sampled_out(chain, name, fields):
        return
    chain.writer.write(chain.render(name, _REQUEST_MESSAGE, _with_request_fields(fields)))


def get_logger(**fields: Any) -> Logger:
    """The process logger (set up by `configure`), optionally with fields bound."""
    return _ROOT.bind(**fields) if fields else _ROOT


class _StdlibBridge(logging.Handler):
    """Hands stdlib records (uvicorn, asyncio, httpx, warnings) to the chain."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields: dict[str, Any] = {"logger": record.name}
            if record.exc_info and record.exc_info[0] is not None:
                fields["exc_info"] = record.exc_info
            message = record.getMessage().rstrip()
            if message.startswith(_TRACEBACK_HEADER):
                message = _traceback_as_fields(message, fields)
            log = get_logger()
            if record.levelno >= logging.ERROR:
                log.error(message, **fields)
            elif record.levelno >= logging.WARNING:
                log.warning(message, **fields)
            elif record.levelno >= logging.INFO:
                log.info(message, **fields)
            else:
                log.debug(message, **fields)
        except Exception:  # never let logging take the service down
            self.handleError(record)


_TRACEBACK_HEADER = "Traceback (most recent call last):"
_EXCEPTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def _traceback_as_fields(text: str, fields: dict[str, Any]) -> str:
    """A traceback passed as the message (uvicorn does this when startup fails): the trace goes
    to `stack`, its last line ("FileNotFoundError: ...") becomes the message and `error`."""
    last = text.splitlines()[-1].strip()
    name = last.split(":", 1)[0]
    fields["stack"] = text
    fields["error"] = last
    if _EXCEPTION_NAME.fullmatch(name):
        fields["error_type"] = name.rsplit(".", 1)[-1]
    return last


def _bridge_stdlib(level: int) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_StdlibBridge())
    root.setLevel(level)
    # uvicorn's loggers would otherwise keep their own levels; let them propagate to the bridge.
    # (Their level is set too: uvicorn tests `logger.level` itself before its TRACE messages.)
    for name in ("uvicorn", "uvicorn.error"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True
        named.setLevel(level)
    # The access log is replaced by our own request line (route template, trace ids, duration).
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True
    # httpx logs every request at INFO; our request lines already cover the outbound call.
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))
    logging.getLogger("httpcore").setLevel(max(level, logging.WARNING))
    logging.captureWarnings(True)
    logging.raiseExceptions = False  # a broken record must not print a traceback to stderr


def _bridge_uncaught() -> None:
    def excepthook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
        get_logger().error("uncaught exception", exc_info=(exc_type, exc, tb))

    def thread_excepthook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        get_logger(thread=getattr(args.thread, "name", None)).error(
            "uncaught exception in thread",
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
        )

    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook


def bind_request(fields: Mapping[str, Any]) -> contextvars.Token[dict[str, Any] | None]:
    """Put request-scoped fields (trace ids, request id) on every line of this request."""
    return _request_fields.set({**(_request_fields.get() or {}), **fields})


def unbind_request(token: contextvars.Token[dict[str, Any] | None]) -> None:
    """Undo `bind_request` (the token it returned), at the end of the request."""
    _request_fields.reset(token)
