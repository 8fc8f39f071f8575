"""Finding a payment code in what banks make of a transfer's text (no server)."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, strategies as st

from service.orders.codes import ALPHABET, new_payment_code
from service.payments.matching import is_late, is_test_ping, payment_codes, same_account
from service.payments.payload import VIETNAM, SePayTransaction, transaction_time


def test_a_code_is_found_however_the_bank_wrote_it():
    code = new_payment_code()
    for text in (
        code,
        code.lower(),
        f"CT DEN:0123 {code} chuyen tien",
        f"{code[:2]}-{code[2:6]}-{code[6:]}",
        f"MBVCB.123.{code}.CT",
        f"thanh toan {code[:4]} {code[4:]}",
    ):
        assert payment_codes(None, text) == [code], text


def test_sepays_code_is_taken_when_it_is_ours_and_searched_past_when_not():
    code, other = new_payment_code(), new_payment_code()
    assert payment_codes(code.lower(), other) == [code]
    assert payment_codes("DH123", f"x {other}") == [other]
    assert payment_codes(None, f"{code} {other} {code}") == [code, other]


@given(st.integers(2, 10), st.sampled_from(ALPHABET), st.randoms())
def test_a_mistyped_or_swapped_code_is_never_taken(at, symbol, rnd):
    code = "TC" + "".join(rnd.choice(ALPHABET) for _ in range(8))
    from service.orders.codes import _check_symbol

    code += _check_symbol(code[2:])
    typo = code[:at] + symbol + code[at + 1 :]
    assert payment_codes(None, f"x {typo} y") == ([code] if typo == code else [])
    swapped = code[: at - 1] + code[at] + code[at - 1] + code[at + 1 :] if at > 2 else code
    assert payment_codes(None, swapped) == [code] if swapped == code else payment_codes(None, swapped) == []


def test_the_test_ping_and_accounts_and_lateness():
    assert is_test_ping("Giao dịch thử nghiệm") and is_test_ping("GIAO DICH  THU NGHIEM 123")
    assert not is_test_ping("chuyen tien") and not is_test_ping(None)
    assert same_account(None, "x") and same_account("0123", "0123") and same_account("0123", "99", "0123")
    assert not same_account("0123", "01234", None)
    due = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert not is_late(due + dt.timedelta(seconds=120), due, 120) and is_late(due + dt.timedelta(seconds=121), due, 120)


def test_transaction_date_is_vietnam_time():
    t = SePayTransaction(id=1, transfer_type="in", transfer_amount=1, transaction_date="2026-03-25 14:02:37")
    assert transaction_time(t) == dt.datetime(2026, 3, 25, 7, 2, 37, tzinfo=dt.UTC)
    assert transaction_time(t).tzinfo == VIETNAM
    for wrong in ("25/03/2026 14:02", "", None):
        assert (
            transaction_time(SePayTransaction(id=1, transfer_type="in", transfer_amount=1, transaction_date=wrong))
            is None
        )
