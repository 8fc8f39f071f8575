"""The invariant check, fed consistent and deliberately broken states as plain numbers."""

from __future__ import annotations

from loadtest.invariants import Observed, TierCount, check, passed


def tier(**changes: object) -> TierCount:
    base = TierCount(tier_id="t1", total=100, sold=60, held=30, sold_db=60, tickets_valid=60, bought=60)
    return base._replace(**changes)


def statuses(observed: Observed) -> dict[str, str]:
    return {c.name: c.status for c in check(observed)}


def failing(observed: Observed) -> set[str]:
    return {c.name for c in check(observed) if c.status == "fail"}


def test_a_consistent_state_passes_every_check() -> None:
    observed = Observed(
        tiers=[tier(), tier(tier_id="t2", sold=0, held=0, sold_db=0, tickets_valid=0, bought=0)],
        carts_with_several_orders=[],
    )
    assert passed(check(observed))
    assert set(statuses(observed).values()) == {"pass"}


def test_more_held_and_sold_than_there_are_seats_fails() -> None:
    assert failing(Observed([tier(held=41)], [])) == {"sold + held <= total (Redis)"}


def test_a_negative_hold_count_fails() -> None:
    assert "sold + held <= total (Redis)" in failing(Observed([tier(held=-1)], []))


def test_postgresql_disagreeing_with_redis_fails() -> None:
    assert failing(Observed([tier(sold=59)], [])) == {"PostgreSQL sold = Redis sold"}


def test_postgresql_oversold_fails_even_when_redis_agrees() -> None:
    broken = failing(Observed([tier(sold=101, held=0, sold_db=101, tickets_valid=101, bought=101)], []))
    assert broken == {"sold + held <= total (Redis)", "0 <= sold <= total (PostgreSQL)"}


def test_tickets_not_matching_quantity_sold_fails() -> None:
    assert failing(Observed([tier(tickets_valid=61)], [])) == {"live tickets = quantity_sold"}


def test_buyers_holding_orders_for_more_seats_than_were_sold_fails() -> None:
    assert failing(Observed([tier(bought=62)], [])) == {"sold = seats in the orders buyers got"}


def test_a_cart_with_two_orders_fails() -> None:
    result = check(Observed([tier()], carts_with_several_orders=[("cart-1", 2)]))
    [verdict] = [c for c in result if c.name == "no cart with two orders"]
    assert verdict.status == "fail" and "cart-1: 2 orders" in verdict.detail


def test_a_retried_checkout_answered_with_another_order_fails_without_the_database() -> None:
    observed = Observed([tier()], carts_with_several_orders=None, checkout_retries=3, second_orders_seen=1)
    assert "no cart with two orders" in failing(observed)


def test_a_flash_sale_that_leaves_seats_unsold_fails() -> None:
    sold_out = tier(total=10, sold=10, held=0, sold_db=10, tickets_valid=10, bought=10)
    assert passed(check(Observed([sold_out], [], flash_expected_sold=10)))
    short = tier(total=10, sold=9, held=1, sold_db=9, tickets_valid=9, bought=9)
    assert failing(Observed([short], [], flash_expected_sold=10)) == {"flash sale sold exactly its seats"}


def test_what_cannot_be_known_is_skipped_not_passed() -> None:
    unknown = tier(sold_db=None, tickets_valid=None, bought=None)
    result = statuses(Observed([unknown], carts_with_several_orders=None))
    assert result["PostgreSQL sold = Redis sold"] == "skip"
    assert result["live tickets = quantity_sold"] == "skip"
    assert result["sold = seats in the orders buyers got"] == "skip"
    assert result["no cart with two orders"] == "skip"
    assert result["sold + held <= total (Redis)"] == "pass"


def test_many_broken_tiers_are_summarised() -> None:
    tiers = [tier(tier_id=f"t{i}", held=50) for i in range(8)]
    [verdict] = [c for c in check(Observed(tiers, [])) if c.status == "fail"]
    assert verdict.detail.endswith("and 3 more")
