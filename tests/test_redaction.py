"""The redaction rules one by one: the vocabulary, card windows, free text, ids left intact.

The property tests (tests/test_redaction_properties.py) throw generated secrets at both
services; this module pins each documented rule and each deliberate non-match, so a change
of behaviour is a visible decision.
"""

from __future__ import annotations

import pytest

from bookstore import cardnumbers, redaction
from bookstore.redaction import MASK

VISA = "4111111111111111"


# --- keys ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "key",
    [
        # camelCase and compound spellings the issue found unmasked
        "accessToken",
        "refreshToken",
        "clientSecret",
        "dbPassword",
        "newPassword",
        "privateKey",
        "password_confirmation",
        "creditCard",
        "cc_number",
        "securityCode",
        "pin",
        "otp",
        "jwt",
        "tokens",
        "passwords",
        # separators, case, plurals, digits, full-width letters
        "PASSWORD",
        "Pass-Word",
        "x-api-key",
        "X_API_KEY",
        "APIKey",
        "apikey",
        "api.keys",
        "id_token",
        "auth_token",
        "Authorization",
        "Proxy-Authorization",
        "Set-Cookie",
        "cookies",
        "session_id",
        "sessionToken",
        "client_secret",
        "card_no",
        "CardNumber",
        "CARDNUMBER",
        "cvv2",
        "CVC",
        "card_pin",
        "ssn",
        "social_security_number",
        "passwd",
        "pass",
        "db_pass",
        "passphrase",
        "credentials",
        "\uff50\uff41\uff53\uff53\uff57\uff4f\uff52\uff44",  # full-width "password"
        "passwordHash",
        "iban",
    ],
)
def test_keys_naming_a_secret_are_sensitive_in_any_spelling(key):
    assert redaction.is_sensitive_key(key)


@pytest.mark.parametrize(
    "key",
    [
        # words that merely contain a short vocabulary word
        "passed",
        "passenger",
        "bypass",
        "compass",
        "pinned",
        "spin",
        "opinion",
        "span_id",
        "company",
        "author",
        "oauth_provider",
        "secretary",
        # keys that describe a secret without holding it (METADATA_WORDS)
        "tokens_used",
        "token_type",
        "password_length",
        "pin_count",
        "session_ttl",
        # our own fields
        "trace_id",
        "request_id",
        "order_id",
        "book_id",
        "qty",
    ],
)
def test_keys_that_only_resemble_a_secret_are_not(key):
    assert not redaction.is_sensitive_key(key)


def test_key_words_split_case_separators_and_digits():
    assert redaction.key_words("accessToken") == ["access", "token"]
    assert redaction.key_words("APIKey") == ["api", "key"]
    assert redaction.key_words("x-api.KEY_2") == ["x", "api", "key", "2"]


def test_anything_under_a_sensitive_key_is_masked_at_any_depth():
    body = {
        "a": [{"b": {"refreshTokens": ["t1", {"x": "t2"}]}}],
        "passwords": ["p1", "p2"],
        "clientSecret": {"nested": 12},
        "cvv": 737,
        "tokens_used": 5,
    }
    assert redaction.redact_value(body) == {
        "a": [{"b": {"refreshTokens": MASK}}],
        "passwords": MASK,
        "clientSecret": MASK,
        "cvv": MASK,
        "tokens_used": 5,
    }


def test_depth_beyond_the_limit_is_cut_not_leaked():
    value: object = "4111 1111 1111 1111"
    for _ in range(20):
        value = [value]
    assert VISA not in repr(redaction.redact_value(value))


# --- card numbers ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "4111111111111111",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4111.1111.1111.1111",
        "4111/1111/1111/1111",
        "4111  1111  1111  1111",
        "4111 - 1111 - 1111 - 1111",
        "4111\u00a01111\u20131111\u20141111",  # no-break space, en and em dashes
        "4111\n1111\t1111\r\n1111",
        "4111    1111    1111    1111",
        "4\u200b1\u200b1\u200b1111111111111",  # zero-width spaces
        "4111*1111#1111~1111",
        "\uff14\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11",
        "\u0664\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661",
        "4111111111111111 12/27 737",  # followed by expiry and CVV: one run, masked whole
        "4111111111111111737",
        "99 4111 1111 1111 1111",  # preceded by another number
        "card4111111111111111x",  # glued to letters
        "378282246310005",  # Amex, 15 digits
        "4222222222222",  # 13 digits
        "6011000990139424",
    ],
)
def test_card_numbers_are_masked_in_any_writing(text):
    masked = redaction.redact_text(f"paid with {text} today")
    assert masked.startswith("paid with ") and masked.endswith(" today")
    assert MASK in masked and not any(c.isdigit() for c in masked)


def test_the_whole_run_goes_so_the_cvv_next_to_a_card_goes_too():
    assert "737" not in redaction.redact_text("4111 1111 1111 1111 737")


@pytest.mark.parametrize(
    "value",
    [4111111111111111, 4111111111111111737, -4111111111111111, 4111111111111111.0, 4.1111e17],
)
def test_card_numbers_as_json_numbers_are_masked(value):
    assert redaction.redact_value({"n": value}) == {"n": MASK}
    assert redaction.redact_value([value]) == [MASK]


def test_card_numbers_as_json_keys_are_masked_and_kept_apart():
    masked = redaction.redact_value({VISA: 1, "4111 1111 1111 1111": 2, "qty": 3})
    assert masked == {MASK: 1, f"{MASK}#2": 2, "qty": 3}


@pytest.mark.parametrize(
    "text",
    [
        "1234567890123",  # 13 digits, Luhn fails
        "20261201143000",  # 14 digits, no window passes
        "0000000000000000",  # one digit repeated: nobody's card
        "1111111111111111111",
        "order 12345 of 2026",
        "phone 030 1234 5678",
    ],
)
def test_numbers_that_are_not_cards_stay(text):
    assert redaction.redact_text(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "ord-0000000000000000",
        "ord-4111111111111111",  # an order id, whatever its digits
        "12345678-1234-1234-1234-123456789012",  # a UUID of digits only
        "4111111111111111abcdef0123456789",  # 32 hex
        "411111111111111a",  # 16 hex
        "00-41111111111111111111111111111111-4111111111111111-01",  # a traceparent
    ],
)
def test_id_shaped_tokens_are_never_masked(text):
    assert redaction.redact_text(f"id {text} ok") == f"id {text} ok"


def test_windows_are_tried_inside_long_runs_but_huge_runs_are_masked_outright():
    assert cardnumbers.has_card_window([int(c) for c in "99" + VISA + "99"])
    assert not cardnumbers.has_card_window([int(c) for c in "20261201143000"])
    assert redaction.redact_text("1" * 70 + "2") == MASK


def test_luhn():
    assert cardnumbers.luhn_valid("79927398713")
    assert not cardnumbers.luhn_valid("79927398710")


# --- free text -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("db_password=SECRET1 user=ann", "user=ann"),
        ("client_secret=SECRET1&x=1", "&x=1"),
        ("refresh_token=SECRET1", "refresh_token="),
        ("id_token: SECRET1", "id_token: "),
        ("auth_token = SECRET1", "auth_token = "),
        ("cookie=SECRET1", "cookie="),
        ("pass=SECRET1 done", "pass="),
        ("cvv=SECRET1", "cvv="),
        ("pin=SECRET1", "pin="),
        ("password => SECRET1 rest", "password => "),  # the `>` stays
        ('{"accessToken": "SECRET1 with spaces"}', '{"accessToken": "'),
        ("{'apiKey': 'SECRET1'}", "{'apiKey': '"),
        ('\\"password\\": \\"SECRET1\\"', '\\"password\\": \\"'),
        ("Authorization: Token SECRET1", "Authorization: "),
        ("Authorization: Bearer SECRET1\nnext", "\nnext"),
        ("Cookie: theme=dark; sid=SECRET1", "Cookie: "),
        ("token: Bearer SECRET1", "token: "),
        ("sent Bearer SECRET1", "sent Bearer "),
        ("Basic U0VDUkVUMTpwdw==", "Basic "),
        ("https://ann:SECRET1@db.example/x", "https://[REDACTED]@db.example/x"),
        ("postgres://SECRET1@db", "postgres://[REDACTED]@db"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJTRUNSRVQxIn0.SECRET1", "jwt "),
        ("-----BEGIN PRIVATE KEY-----\nSECRET1\n-----END PRIVATE KEY-----", ""),
        ("\uff50\uff41\uff53\uff53\uff57\uff4f\uff52\uff44=SECRET1", "password="),
        ("9password=SECRET1", "9password="),
        ("--db_password=SECRET1", "--db_password="),
        ("_token: SECRET1", "_token: "),
    ],
)
def test_secrets_in_free_text_are_masked_and_the_rest_kept(text, kept):
    masked = redaction.redact_text(text)
    assert "SECRET1" not in masked and "U0VDUkVUMTpwdw" not in masked
    assert kept in masked
    assert MASK in masked


@pytest.mark.parametrize(
    "text",
    [
        "tokens_used=5 token_type=Bearer",
        "passed=3 spin=1 pinned: yes",
        "basic information about a book",
        "qty must be an integer from 1 to 100 (got str 'two')",
        "reader@example.com",
    ],
)
def test_free_text_without_secrets_is_unchanged(text):
    assert redaction.redact_text(text) == text


# --- reasons and settings ----------------------------------------------------------------
def test_describe_masks_by_structure_before_cutting():
    long_run = " ".join(["4111 1111 1111 1111"] * 3)
    shown = redaction.describe(long_run, 40)
    assert "1111" not in shown
    assert redaction.describe({"cvv": "737", "qty": 2}) == "{'cvv': '[REDACTED]', 'qty': 2}"
    assert len(redaction.describe("x" * 500, 40)) == 40


def test_clip_masks_then_cuts():
    assert redaction.clip("password=hunter2" + "x" * 300, 30).startswith("password=[REDACTED]")
    assert len(redaction.clip("a" * 300, 30)) == 30


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://ann:pw@catalog:8080/x", "http://[REDACTED]@catalog:8080/x"),
        ("https://token@catalog", "https://[REDACTED]@catalog"),
        ("ann:pw@catalog", "[REDACTED]@catalog"),
        ("http://catalog", "http://catalog"),
        ("http://catalog/a@b", "http://catalog/a@b"),
    ],
)
def test_mask_userinfo(url, shown):
    assert redaction.mask_userinfo(url) == shown


def test_the_vocabulary_renders_every_term():
    text = redaction.vocabulary_markdown()
    for terms in redaction.SENSITIVE_TERMS.values():
        for term in terms:
            assert f"`{term}`" in text
    for word in redaction.METADATA_WORDS:
        assert f"`{word}`" in text


@pytest.mark.timeout(30)  # a hang guard, not a speed target (those are in benchmarks/)
@pytest.mark.parametrize(
    "text",
    [
        "a" * 16000 + " " * 5000 + "b=",  # took 40 s when the key pattern retried every position
        "eyJ" * 5000,
        "x://" + "a" * 16000,
        "a" * 16000 + " ://",
        "password: " * 2000,
        ("1" * 12 + "-") * 1000,
        "1 " * 8000,
        "\uff11" * 16000,
        "Bearer " * 3000,
    ],
)
def test_hostile_long_texts_are_scanned_in_linear_time(text):
    for _ in range(20):
        redaction.redact_text(text + str(_))  # new text each time: no cache hit


@pytest.mark.parametrize(
    "text",
    ["db_password=SECRET1 x", "Authorization: Bearer SECRET1", '{"token": "SECRET1"}', "pin=1234"],
)
def test_masking_twice_changes_nothing(text):
    once = redaction.redact_text(text)
    assert redaction.redact_text(once) == once
    assert redaction.redact_value({"note": once}) == {"note": once}


def test_a_card_glued_to_a_keyed_value_leaves_one_mask_and_no_stray_bracket():
    assert redaction.redact_text("password=hunter2 4111 1111 1111 1111") == "password=[REDACTED]"
