"""Masking secrets before a log line is written: once it is in Loki it is everywhere.

Structure first, patterns second. Every field of every line, at any depth (dicts, lists,
tuples, sets), goes through these rules:

1. **By key.** A key is cut into words (`accessToken`, `ACCESS_TOKEN`, `access-token`,
   `x.access.token` all become `access token`; full-width letters are folded first) and
   matched against one vocabulary, `SENSITIVE_TERMS`. Whatever is under a matching key
   (a string, a number, a whole object or array) is replaced by `[REDACTED]`.
2. **By value.** Strings, numbers (ints and floats) and dict keys are scanned for payment
   card numbers (`bookstore.cardnumbers`: every 13-19-digit window of a digit run is tried
   with the Luhn check, any separator and digit script). In free text, `key=value`,
   `key: value`, `key => value` and `"key": "value"` for every key of the vocabulary,
   `Authorization:`/`Cookie:` lines, `Bearer x`, URL userinfo (`https://user:pw@host`),
   JWTs and PEM private keys are masked.

Reasons and messages built from request data are masked with the same rules *before* they
are shortened (`describe`), so a cut never leaves part of a card number behind.

What is never masked, by design: the ids the services log to correlate lines. At the top of
a line, the fields the services fill in themselves (`trace_id`, `span_id`, `request_id`,
`order_id`, ...) are not scanned at all. Inside text, the card scan skips tokens shaped like
our ids (`ord-` + 16 hex, UUIDs, a `traceparent`, 16 or 32 hex digits with at least one
letter) and windows made of one repeated digit (`0000000000000000` is no issuer's card).
A run of more than 64 digits is masked without trying windows: no id is that long.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from bookstore import cardnumbers

MASK = "[REDACTED]"

# The vocabulary: one list, rendered in the chapter and the log-schema reference page.
# Each entry is a phrase of words; a key matches when its words contain the phrase's words
# in order (`db_password`, `passwordConfirmation`, `x-api-key`), singular or plural.
SENSITIVE_TERMS: dict[str, tuple[str, ...]] = {
    "passwords": ("password", "passwd", "pwd", "pass", "passphrase", "passcode"),
    "secrets and keys": (
        "secret",
        "api key",
        "private key",
        "signing key",
        "encryption key",
        "credential",
        "creds",
    ),
    "tokens": ("token", "jwt", "otp", "totp"),
    "HTTP authentication": ("authorization", "auth", "cookie", "session", "sid"),
    "payment cards": (
        "card number",
        "card no",
        "card num",
        "credit card",
        "debit card",
        "cc number",
        "cc num",
        "ccnum",
        "pan",
        "cvv",
        "cvc",
        "cvn",
        "csc",
        "security code",
        "card verification",
        "pin",
        "iban",
        "account number",
    ),
    "identity": ("ssn", "social security number"),
}
# Words that may also end a longer word written without separators (`newpassword`,
# `clientsecret`, `refreshtoken`, `setcookie`); short words (`pass`, `pin`, `pan`) may not,
# or `bypass`, `spin` and `span` would match.
_SUFFIX_WORDS = ("password", "passwd", "passphrase", "secret", "token", "apikey", "cookie")
# ... and begin one (`passwordconfirmation`, `passwordhash`).
_PREFIX_WORDS = ("password", "passwd", "passphrase")
# A key whose last word is one of these describes a secret without holding it
# (`token_type`, `tokens_used`, `password_length`, `pin_count`): it is not masked.
METADATA_WORDS = frozenset(
    {"count", "used", "length", "len", "type", "ttl", "expires", "expiry", "size", "limit"}
    | {"min", "max", "enabled", "required", "policy", "format"}
)
# Keys whose free-text value runs to the end of the line (`Authorization: Digest a="b", c=d`,
# `Cookie: a=1; b=2`), not to the first space or `;`.
_WHOLE_LINE_WORDS = frozenset({"authorization", "cookie"})
# Authorization schemes: `Authorization: Token abc` masks the credentials after the scheme.
_SCHEMES = ("bearer", "basic", "token", "digest", "negotiate", "ntlm", "apikey", "jwt")

# Fields the services fill in themselves, from values they generated or validated: never
# scanned at the top of a line (speed, and an id must never be masked by accident).
TRUSTED_ID_KEYS = frozenset(
    {"trace_id", "span_id", "parent_span_id", "trace_flags", "request_id", "order_id"}
)
OWN_FIELDS = TRUSTED_ID_KEYS | {
    "level",
    "method",  # known methods only; web.safe_method scans any other
    "route",
    "status",
    "duration_ms",
    "retry_attempt",
}
_MAX_DEPTH = 8
_SHORTEST_CARD = 10**12  # a card number has 13 digits or more: a smaller integer is none
_CACHED_TEXT_LENGTH = 256
_CACHE_LIMIT = 4096


def _phrases() -> tuple[frozenset[str], tuple[tuple[str, ...], ...]]:
    single: set[str] = set()
    multi: list[tuple[str, ...]] = []
    for terms in SENSITIVE_TERMS.values():
        for term in terms:
            words = tuple(term.split())
            if len(words) == 1:
                single.add(words[0])
            else:
                multi.append(words)
                single.add("".join(words))  # `apikey`, `cardnumber`, `creditcard`
    return frozenset(single), tuple(multi)


_SINGLE_WORDS, _MULTI_WORDS = _phrases()
_KEY_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_key_verdicts: dict[str, bool] = {}


def key_words(key: str) -> list[str]:
    """`accessToken` -> ['access', 'token']: the words a key is made of, lowercase."""
    if not key.isascii():
        key = unicodedata.normalize("NFKC", key)
    return [word.lower() for word in _KEY_WORD.findall(key)]


def _singular(word: str) -> str:
    return word[:-1] if len(word) >= 3 and word.endswith("s") and not word.endswith("ss") else word


def _word_matches(word: str) -> bool:
    if word in _SINGLE_WORDS or _singular(word) in _SINGLE_WORDS:
        return True
    return (
        word.endswith(_SUFFIX_WORDS)
        or _singular(word).endswith(_SUFFIX_WORDS)
        or (word.startswith(_PREFIX_WORDS))
    )


def _words_sensitive(words: list[str]) -> bool:
    if not words or words[-1] in METADATA_WORDS:
        return False
    if any(_word_matches(word) for word in words):
        return True
    singular = [_singular(word) for word in words]
    for phrase in _MULTI_WORDS:
        size = len(phrase)
        for start in range(len(singular) - size + 1):
            if tuple(singular[start : start + size]) == phrase:
                return True
    return False


def is_sensitive_key(key: str) -> bool:
    """True when a field named `key` holds a secret (see SENSITIVE_TERMS and METADATA_WORDS)."""
    verdict = _key_verdicts.get(key)
    if verdict is None:
        verdict = _words_sensitive(key_words(key))
        # Keys are few; a flood of new ones (or a huge one) is not cached.
        if len(_key_verdicts) < _CACHE_LIMIT and len(key) <= _CACHED_TEXT_LENGTH:
            _key_verdicts[key] = verdict
    return verdict


def vocabulary_markdown() -> str:
    """The vocabulary as a Markdown list (the docs render it; one source for every page)."""
    lines = [
        f"- **{group}**: " + ", ".join(f"`{term}`" for term in terms)
        for group, terms in SENSITIVE_TERMS.items()
    ]
    lines.append(
        "- **not masked** (the key describes a secret, it does not hold one) when the last "
        "word is one of: " + ", ".join(f"`{word}`" for word in sorted(METADATA_WORDS))
    )
    return "\n".join(lines)


# -- secrets in free text --------------------------------------------------------------------
# A key-like word, its closing quote (maybe escaped), a separator, the value's opening quote.
# Every pattern that scans forward starts only at a word boundary and is possessive (`*+`):
# a client controls this text, and a pattern that retried from every position of a long word
# would take quadratic time (a 20 KB value once took 40 s).
_KEY_SEP = re.compile(
    r"(?<![A-Za-z0-9_.\-])([A-Za-z0-9_.\-]++)(\\?[\"']?)(\s*+(?:=>|:|=)\s*+)(\\?[\"'])?",
    re.ASCII,
)
_SCHEME_PREFIX = re.compile(r"(?i)(?:" + "|".join(_SCHEMES) + r")\s+")
_PLAIN_VALUE = re.compile(r"[^\s\"'&,;)\]}<>\\]+")
_LINE_VALUE = re.compile(r"[^\r\n\"'\\]+")
_USERINFO = re.compile(r"(?<![A-Za-z0-9+.\-])([A-Za-z][A-Za-z0-9+.\-]*+://)([^/\s@?#\"']++)@")
# `Basic <base64>` only when the word after it looks encoded (a digit, +, / or =, or mixed
# case), so that "basic information" stays readable.
_BEARER = re.compile(
    r"(?i:(\bbearer\s+))[^\s\"',;]+"
    r"|(?i:(\bbasic\s+))(?=[A-Za-z0-9+/]*(?:[0-9+/=]|[a-z][A-Z]|[A-Z][a-z]))[A-Za-z0-9+/]{8,}={0,2}"
)
_JWT = re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{4,}+\.[A-Za-z0-9_-]{4,}+\.[A-Za-z0-9_-]*+")
_PEM = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.DOTALL
)


def _mask_key_values(text: str) -> str:
    pieces: list[str] = []
    position = 0
    search = _KEY_SEP.search
    match = search(text)
    while match is not None:
        key = match.group(1)
        start = match.end()
        if not is_sensitive_key(key):
            match = search(text, match.end(3))
            continue
        quote = match.group(4)
        if quote:
            end = text.find(quote, start)
            end = len(text) if end < 0 else end
        elif text.startswith(MASK, start):
            # Already masked (a body masked by structure, then logged as a field): leave it,
            # or `[REDACTED` would be taken for the value and a stray `]` left behind.
            match = search(text, start + len(MASK))
            continue
        else:
            whole_line = any(_singular(w) in _WHOLE_LINE_WORDS for w in key_words(key))
            # `token: Bearer abc`: the scheme and what follows it are masked together.
            scheme = _SCHEME_PREFIX.match(text, start)
            pattern = _LINE_VALUE if whole_line else _PLAIN_VALUE
            value = pattern.match(text, scheme.end() if scheme else start)
            if value is None:
                match = search(text, start)
                continue
            end = value.end()
            cut = text.find(MASK[:-1], start, end)
            if cut >= 0 and text.startswith(MASK, cut):
                end = cut + len(MASK)  # a card masked inside the value: one mask for both
        if end > start:
            pieces.append(text[position:start])
            pieces.append(MASK)
            position = end
        match = search(text, max(end, match.end()))
    if not pieces:
        return text
    pieces.append(text[position:])
    return "".join(pieces)


def _mask_userinfo_match(match: re.Match[str]) -> str:
    return match.group(1) + MASK + "@"


def _keep_prefix(match: re.Match[str]) -> str:
    return (match.group(1) or match.group(2) or "") + MASK


_text_cache: dict[str, str] = {}


def redact_text(text: str) -> str:
    """Free text with card numbers and every secret-shaped part masked.

    Short texts repeat (messages, reasons, enum-like values): their result is cached, which
    keeps a line's redaction cost near a dict lookup per field. The cache holds at most
    `_CACHE_LIMIT` entries and starts over when full, so a flood of unique values costs
    nothing but the misses.
    """
    if len(text) > _CACHED_TEXT_LENGTH:
        return _redact_text(text)
    masked = _text_cache.get(text)
    if masked is None:
        masked = _redact_text(text)
        if len(_text_cache) >= _CACHE_LIMIT:
            _text_cache.clear()
        _text_cache[text] = masked
    return masked


def _redact_text(text: str) -> str:
    if not text.isascii():
        # Full-width digits and letters, odd spaces and dashes fold to ASCII, so one set of
        # rules sees every spelling (the logged text is the folded one).
        text = unicodedata.normalize("NFKC", text)
    if len(text) >= 13:
        text = cardnumbers.mask_cards(text, MASK)
    if "=" in text or ":" in text:
        text = _mask_key_values(text)
        if "://" in text:
            text = _USERINFO.sub(_mask_userinfo_match, text)
    if "earer" in text or "EARER" in text or "asic" in text or "ASIC" in text:
        text = _BEARER.sub(_keep_prefix, text)
    if "eyJ" in text:
        text = _JWT.sub(MASK, text)
    if "PRIVATE KEY" in text:
        text = _PEM.sub(MASK, text)
    return text


def mask_userinfo(url: str) -> str:
    """A URL with any `user:password@` masked (`http://[REDACTED]@catalog`), for settings."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = MASK + "@" + authority.rsplit("@", 1)[1]
    return f"{scheme}{sep}{authority}{slash}{path}"


# -- structures ------------------------------------------------------------------------------
_key_infos: dict[str, tuple[bool, str]] = {}


def _key_info(key: str) -> tuple[bool, str]:
    """(is the key sensitive, the key as it may be shown): one cached lookup per dict key."""
    info = _key_infos.get(key)
    if info is None:
        info = (is_sensitive_key(key), redact_text(key))
        if len(key) > _CACHED_TEXT_LENGTH:
            return info
        if len(_key_infos) >= _CACHE_LIMIT:
            _key_infos.clear()
        _key_infos[key] = info
    return info


def _redact_dict(value: dict[Any, Any], depth: int) -> dict[Any, Any]:
    masked: dict[Any, Any] = {}
    text_cache = _text_cache
    for k, v in value.items():
        if type(k) is str:
            sensitive, shown = _key_infos.get(k) or _key_info(k)
        else:
            sensitive, shown = (
                False,
                MASK if type(k) is int and cardnumbers.number_is_card(k) else k,
            )
        if sensitive:
            new = MASK
        elif type(v) is str:  # inlined: most leaves are short strings or small numbers
            new = text_cache.get(v) or redact_text(v)
        elif type(v) is int and -_SHORTEST_CARD < v < _SHORTEST_CARD:
            new = v
        else:
            new = redact_value(v, depth + 1)
        if shown != k:
            # A card number (or `password=x`) as a key: the key goes, numbered if repeated.
            base, n = shown, 2
            while shown in masked:
                shown, n = f"{base}#{n}", n + 1
        masked[shown] = new
    return masked


def redact_value(value: Any, depth: int = 0) -> Any:
    """`value` with every secret in it masked (containers are copied, never changed in place)."""
    kind = type(value)  # exact-type checks first: this runs for every field of every line
    if kind is str:
        return redact_text(value)
    if kind is dict:
        return "[TRUNCATED]" if depth >= _MAX_DEPTH else _redact_dict(value, depth)
    if value is None or kind is bool:
        return value
    if kind is int:
        if -_SHORTEST_CARD < value < _SHORTEST_CARD:
            return value
        return MASK if cardnumbers.number_is_card(value) else value
    if kind is float:
        return MASK if cardnumbers.number_is_card(value) else value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return MASK if cardnumbers.number_is_card(value) else value
    if isinstance(value, list | tuple | set | frozenset):
        if depth >= _MAX_DEPTH:
            return "[TRUNCATED]"
        return [redact_value(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return redact_value(dict(value), depth)
    return redact_text(str(value))


def describe(value: Any, limit: int = 60) -> str:
    """A client's value for a reason sentence: masked by structure first, then cut.

    `describe({"cvv": "737"})` is `{'cvv': '[REDACTED]'}`; a long digit run is masked whole
    before the cut, so the cut can never leave part of a card number behind.
    """
    text = repr(redact_value(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def clip(text: str, limit: int) -> str:
    """Untrusted text (a header, a path) for a log field: masked first, then cut to `limit`."""
    text = redact_text(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def redact_event(event: dict[str, Any]) -> dict[str, Any]:
    """A line's fields, masked in place: every field except our own validated ids goes through
    the rules."""
    verdicts, text_cache = _key_verdicts, _text_cache
    for key, value in event.items():
        if key in OWN_FIELDS:
            continue
        sensitive = verdicts.get(key)
        if sensitive is None:
            sensitive = is_sensitive_key(key)
        if sensitive:
            event[key] = MASK
        elif type(value) is str:  # the common case first: this runs for every line
            event[key] = text_cache.get(value) or redact_text(value)
        elif type(value) is int and -_SHORTEST_CARD < value < _SHORTEST_CARD:
            continue
        elif value is not None and type(value) is not bool:
            try:
                event[key] = redact_value(value)
            except Exception as exc:  # an object whose str() fails: drop it, keep the line
                event[key] = f"[UNREADABLE: {type(exc).__name__}]"
    return event
