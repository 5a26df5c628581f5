"""LOG_FORMAT: `json` is the contract; `text` is the plain format the lab's first exercise ships
on purpose (one line per event still, redaction still applied, but nothing a log store can
parse without a regex)."""

from __future__ import annotations

import io
import json

import pytest

from bookstore import logs
from bookstore.settings import Settings, SettingsError


def lines_of(fmt: str, emit) -> list[str]:
    out = io.StringIO()
    logs.configure("catalog", stream=out, log_format=fmt, level="DEBUG")
    try:
        emit(logs.get_logger())
    finally:
        logs.configure("catalog")  # the default chain again for the next test
    return out.getvalue().splitlines()


def test_text_lines_carry_the_same_fields_as_plain_words() -> None:
    (line,) = lines_of("text", lambda log: log.info("order placed", order_id="ord-1", qty=2))
    time, level, service, *rest = line.split(" ")
    assert time.endswith("Z") and level == "INFO" and service == "catalog"
    assert " ".join(rest) == "order placed order_id=ord-1 qty=2"
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_text_lines_are_still_redacted_and_stay_on_one_line() -> None:
    def emit(log):
        log.warning("bad body", body={"password": "hunter2"}, reason="card 4111 1111 1111 1111")
        try:
            raise RuntimeError("boom\nsecond line")
        except RuntimeError:
            log.exception("failed")

    lines = lines_of("text", emit)
    assert len(lines) == 2, lines  # the stack trace is escaped, not spread over lines
    assert "hunter2" not in lines[0] and "4111 1111" not in lines[0]
    assert lines[1].split(" ")[1] == "ERROR" and "\\n" in lines[1]


def test_json_stays_the_default_and_the_contract() -> None:
    (line,) = lines_of("json", lambda log: log.info("hello"))
    assert json.loads(line)["msg"] == "hello"
    assert Settings.from_env({}).log_format == "json"
    assert Settings.from_env({"LOG_FORMAT": " TEXT "}).log_format == "text"


def test_an_unknown_format_is_a_settings_error_naming_the_choices() -> None:
    with pytest.raises(SettingsError, match=r"LOG_FORMAT='xml' is not one of json, text"):
        Settings.from_env({"LOG_FORMAT": "xml"})
