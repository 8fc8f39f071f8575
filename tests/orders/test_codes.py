"""The order's codes: payment codes catch typos, nothing people read has look-alikes, and
machine codes are long enough not to be guessed."""

from __future__ import annotations

import itertools

from service.orders import codes


def test_payment_codes_are_well_formed_and_pass_their_own_check():
    for _ in range(500):
        code = codes.new_payment_code()
        assert len(code) == 11 and code.startswith("TC")
        assert set(code[2:]) <= set(codes.ALPHABET)
        assert codes.payment_code_is_valid(code)


def test_every_single_mistyped_symbol_is_detected():
    for _ in range(50):
        code = codes.new_payment_code()
        for position in range(2, len(code)):
            for symbol in codes.ALPHABET:
                if symbol != code[position]:
                    typo = code[:position] + symbol + code[position + 1 :]
                    assert not codes.payment_code_is_valid(typo), (code, typo)


def test_every_swap_of_two_neighbouring_symbols_is_detected():
    for _ in range(200):
        code = codes.new_payment_code()
        for position in range(2, len(code) - 1):
            a, b = code[position], code[position + 1]
            if a != b:
                swapped = code[:position] + b + a + code[position + 2 :]
                assert not codes.payment_code_is_valid(swapped), (code, swapped)


def test_a_code_typed_loosely_is_still_recognised_and_junk_is_refused():
    code = codes.new_payment_code()
    assert codes.payment_code_is_valid(f" {code[:5].lower()}-{code[5:]} ")
    for junk in ("", "TC", "XX" + code[2:], code + "A", code[:-1], code[:-1] + "0"):
        assert not codes.payment_code_is_valid(junk)


def test_the_alphabet_has_no_look_alikes():
    assert not set(codes.ALPHABET) & set("0O1IL2Z5S8B")
    assert len(set(codes.ALPHABET)) == len(codes.ALPHABET) == 25


def test_order_numbers_read_well_and_ticket_codes_carry_at_least_80_random_bits():
    number = codes.new_order_number()
    assert number.startswith("TC-") and len(number) == 12 and number[7] == "-"
    tickets = {codes.new_ticket_code() for _ in range(1000)}
    assert len(tickets) == 1000
    assert all(len(t) == 24 for t in tickets)  # base32: 5 bits a symbol, 120 bits


def test_the_access_token_is_stable_per_order_and_key_and_checked_against_its_hash():
    token = codes.order_access_token("key-1", "order-a")
    assert token == codes.order_access_token("key-1", "order-a")
    assert token != codes.order_access_token("key-1", "order-b")
    assert token != codes.order_access_token("key-2", "order-a")
    stored = codes.access_token_hash(token)
    assert codes.access_token_matches(token, stored)
    assert not codes.access_token_matches(token[:-1] + ("A" if token[-1] != "A" else "B"), stored)
    assert not codes.access_token_matches(None, stored) and not codes.access_token_matches(token, None)


def test_check_weights_keep_their_promise():
    # Coprime with 25 each, and so is each neighbour's difference: the reason the two
    # tests above can never fail.
    from math import gcd

    weights = codes._WEIGHTS
    assert all(gcd(w, 25) == 1 for w in weights)
    assert all(gcd(abs(a - b), 25) == 1 for a, b in itertools.pairwise(weights))
    assert (11 * codes._INVERSE_OF_CHECK_WEIGHT) % 25 == 1
