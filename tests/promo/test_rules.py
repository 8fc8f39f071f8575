"""The promo arithmetic and checks, as pure functions: no server needed."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec
import pytest
from hypothesis import given, strategies as st

from service.cart.pricing import totals
from service.errors import InvalidPromo, ValidationFailed
from service.promo.dto import PromoDefinition
from service.promo.rules import (
    check_applies,
    check_definition,
    in_scope,
    line_discounts,
    normalize_code,
    spread,
    uses_refusal,
)
from tests.promo.factories import EVENT_A, EVENT_B, line, promo

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)

DISCOUNT_CASES = [
    # (case, code, lines, expected line discounts)
    ("percent of one line", promo("percent", 10), [line("a", 100_000)], {"a": 10_000}),
    ("percent rounds up to the unit", promo("percent", 10), [line("a", 99_999)], {"a": 10_000}),
    ("a fraction of a unit is a whole unit off", promo("percent", 15), [line("a", 1)], {"a": 1}),
    ("100 percent is everything", promo("percent", 100), [line("a", 125_000, 2)], {"a": 250_000}),
    (
        "percent over lines adds up exactly",
        promo("percent", 33),
        [line("a", 100), line("b", 100), line("c", 100)],
        {"a": 33, "b": 33, "c": 33},
    ),
    (
        "a unit left over goes to the smallest tier id on a tie",
        promo("percent", 10),
        [line("b", 1), line("a", 1), line("c", 1)],
        {"a": 1, "b": 0, "c": 0},
    ),
    ("fixed below the subtotal", promo("fixed", 50_000), [line("a", 200_000)], {"a": 50_000}),
    ("fixed never exceeds the subtotal", promo("fixed", 50_000), [line("a", 30_000)], {"a": 30_000}),
    ("fixed is spread by largest remainder", promo("fixed", 100), [line("a", 200), line("b", 100)], {"a": 67, "b": 33}),
    (
        "event scope leaves other events alone",
        promo("percent", 50, event_id=EVENT_A),
        [line("a", 100_000), line("b", 100_000, event=EVENT_B)],
        {"a": 50_000},
    ),
    (
        "tier scope leaves other tiers alone",
        promo("fixed", 10_000, tier_ids=("b",)),
        [line("a", 100_000), line("b", 5_000, 3)],
        {"b": 10_000},
    ),
    (
        "event and tiers together: both must match",
        promo("percent", 10, event_id=EVENT_B, tier_ids=("a", "b")),
        [line("a", 1_000), line("b", 1_000, event=EVENT_B), line("c", 1_000, event=EVENT_B)],
        {"b": 100},
    ),
    ("a free line takes nothing", promo("fixed", 5_000), [line("a", 0, 4)], {}),
]


@pytest.mark.parametrize(
    ("code", "lines", "expected"), [c[1:] for c in DISCOUNT_CASES], ids=[c[0] for c in DISCOUNT_CASES]
)
async def test_discount_table(code, lines, expected):
    assert line_discounts(code, lines) == expected
    subtotal, discount, total = await totals(lines, code.code, _rule(code))
    assert discount == sum(expected.values()) and total == subtotal - discount


def _rule(code):
    async def rule(items, _):
        return sum(line_discounts(code, items).values())

    return rule


TIERS = [f"t{i}" for i in range(8)]
lines_strategy = st.lists(
    st.builds(
        line, st.sampled_from(TIERS), st.integers(0, 10**9), st.integers(1, 50), st.sampled_from([EVENT_A, EVENT_B])
    ),
    min_size=1,
    max_size=8,
    unique_by=lambda item: item.tier_id,
)
codes_strategy = st.one_of(
    st.builds(promo, st.just("percent"), st.integers(1, 100)),
    st.builds(promo, st.just("fixed"), st.integers(1, 10**11)),
).flatmap(
    lambda code: st.builds(
        lambda event, tiers: msgspec.structs.replace(code, event_id=event, tier_ids=tiers),
        st.sampled_from([None, EVENT_A, EVENT_B]),
        st.one_of(st.none(), st.lists(st.sampled_from(TIERS), min_size=1, unique=True).map(lambda t: tuple(sorted(t)))),
    )
)


@given(code=codes_strategy, lines=lines_strategy)
async def test_discount_stays_within_the_lines_in_scope(code, lines):
    parts = line_discounts(code, lines)
    scoped = {item.tier_id: item.line_total for item in lines if in_scope(code, item)}
    scoped_subtotal = sum(scoped.values())
    discount = sum(parts.values())

    assert set(parts) <= set(scoped)
    assert all(0 <= parts[tier] <= scoped[tier] for tier in parts)
    if code.kind == "percent":
        assert discount == min(scoped_subtotal, -(-scoped_subtotal * code.value // 100))
    else:
        assert discount == min(scoped_subtotal, code.value)

    subtotal, total_discount, total = await totals(lines, code.code, _rule(code))
    assert 0 <= total_discount == discount <= subtotal
    assert total == subtotal - discount >= 0


@given(
    amount_and_weights=st.dictionaries(st.text(min_size=1, max_size=3), st.integers(1, 10**12), min_size=1).flatmap(
        lambda w: st.tuples(st.integers(0, sum(w.values())), st.just(w))
    )
)
def test_spread_adds_up_and_each_share_is_its_proportion_rounded(amount_and_weights):
    amount, weights = amount_and_weights
    shares = spread(amount, weights)
    total = sum(weights.values())
    assert sum(shares.values()) == amount
    for key, weight in weights.items():
        assert amount * weight // total <= shares[key] <= -(-amount * weight // total)


# -- codes and definitions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("summer10", "SUMMER10"),
        ("  Summer-10_x \n", "SUMMER-10_X"),
        ("A" * 64, "A" * 64),
        ("", None),
        ("   ", None),
        ("A" * 65, None),
        ("SUMMER 10", None),
        ("SUMMER!", None),
        # Confusables on purpose (RUF001): the long s and the dotless i upper-case to ASCII
        # letters; refused, not folded.
        ("ſummer", None),  # noqa: RUF001
        ("ıNFO", None),  # noqa: RUF001
    ],
)
def test_codes_are_trimmed_and_upper_cased_and_only_plain_characters(raw, expected):
    assert normalize_code(raw) == expected


def definition(**fields) -> PromoDefinition:
    return msgspec.convert({"code": "save10", "kind": "percent", "value": 10} | fields, PromoDefinition)


def test_a_valid_definition_is_stored_upper_case_with_its_scope_as_text():
    tier = uuid.uuid4()
    stored = check_definition(
        definition(code=" Save10 ", event_id=str(uuid.UUID(EVENT_A)), tier_ids=[str(tier), str(tier)])
    )
    assert stored.code == "SAVE10" and stored.event_id == EVENT_A and stored.tier_ids == (str(tier),)
    assert stored.used == 0 and stored.active


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"code": "no spaces"}, "code", "A-Z"),
        ({"code": "X" * 65}, "code", "64"),
        ({"value": 101}, "value", "between 1 and 100"),
        ({"starts_at": "2030-01-02T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"}, "ends_at", "before"),
        ({"starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"}, "ends_at", "before"),
        ({"tier_ids": []}, "tier_ids", "at least one"),
    ],
)
def test_bad_definitions_are_refused_naming_the_field(fields, field, words):
    with pytest.raises(ValidationFailed) as refused:
        check_definition(definition(**fields))
    assert refused.value.extra["field"] == field and words in refused.value.detail


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"starts_at": "2030-01-01T00:00:00"}, "time zone"),
        ({"ends_at": "2030-01-01T00:00:00"}, "time zone"),
        ({"ends_at": "2100-01-01T00:00:00Z"}, "2100"),
    ],
)
def test_a_window_without_a_time_zone_or_out_of_range_is_refused_while_decoding(fields, words):
    (field,) = fields
    with pytest.raises(msgspec.ValidationError, match=rf"{words}.* - at `\$\.{field}`$"):
        definition(**fields)


def test_a_fixed_code_may_be_worth_more_than_100():
    assert check_definition(definition(kind="fixed", value=250_000, currency="VND")).value == 250_000


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"kind": "fixed", "value": 50_000}, "needs the currency"),
        ({"kind": "percent", "value": 10, "currency": "VND"}, "no currency"),
    ],
)
def test_a_fixed_code_carries_its_currency_and_a_percent_code_none(fields, words):
    with pytest.raises(ValidationFailed) as refused:
        check_definition(definition(**fields))
    assert refused.value.extra["field"] == "currency" and words in refused.value.detail
    assert check_definition(definition(kind="fixed", value=50_000, currency="USD")).currency == "USD"
    assert check_definition(definition(kind="percent", value=10)).currency is None


@pytest.mark.parametrize("currency", ["vnd", "VN", "VNDX", "V\u0000D"])
def test_a_currency_is_three_upper_case_letters(currency):
    with pytest.raises(msgspec.ValidationError, match="currency"):
        definition(kind="fixed", value=1, currency=currency)


# -- whether a code applies ------------------------------------------------------------------


def reason(code, lines, now=NOW) -> str | None:
    try:
        check_applies(code, lines, now)
    except InvalidPromo as refused:
        return refused.extra["reason"]
    return None


def test_an_unknown_code_is_not_found():
    assert reason(None, [line("a", 100)]) == "not-found"


def test_an_inactive_code_does_not_apply():
    assert reason(promo(active=False), [line("a", 100)]) == "inactive"


def test_the_window_opens_at_its_start_and_closes_at_its_end():
    code = promo(starts_at=NOW, ends_at=NOW + dt.timedelta(days=1))
    lines = [line("a", 100)]
    assert reason(code, lines, NOW - dt.timedelta(microseconds=1)) == "not-started"
    assert reason(code, lines, NOW) is None
    assert reason(code, lines, NOW + dt.timedelta(days=1) - dt.timedelta(microseconds=1)) is None
    assert reason(code, lines, NOW + dt.timedelta(days=1)) == "expired"


def test_a_window_in_another_time_zone_compares_by_instant():
    ho_chi_minh = dt.timezone(dt.timedelta(hours=7))
    code = promo(ends_at=dt.datetime(2030, 6, 1, 19, 0, tzinfo=ho_chi_minh))  # 12:00 UTC
    assert reason(code, [line("a", 100)], NOW) == "expired"
    assert reason(code, [line("a", 100)], NOW - dt.timedelta(seconds=1)) is None


def test_a_code_scoped_elsewhere_is_not_applicable():
    assert reason(promo(event_id=EVENT_B), [line("a", 100)]) == "not-applicable"
    assert reason(promo(tier_ids=("z",)), [line("a", 100)]) == "not-applicable"
    assert reason(promo(), []) == "not-applicable"


def test_a_fixed_code_applies_to_lines_in_its_own_currency_only():
    vnd_code = promo("fixed", 50_000, currency="VND")
    with pytest.raises(InvalidPromo) as refused:
        check_applies(vnd_code, [line("a", 2_000, currency="USD")], NOW)
    assert refused.value.extra == {"reason": "currency", "currency": "VND", "cart_currency": "USD"}
    assert reason(vnd_code, [line("a", 200_000)]) is None
    assert reason(promo("fixed", 500, currency="USD"), [line("a", 2_000, currency="USD")]) is None
    assert reason(promo("percent", 10), [line("a", 2_000, currency="USD")]) is None  # a share has no currency


def test_the_currency_is_checked_after_the_scope_and_before_the_minimum():
    usd_line = [line("a", 2_000, currency="USD")]
    assert reason(promo("fixed", 1, currency="VND", event_id=EVENT_B), usd_line) == "not-applicable"
    assert reason(promo("fixed", 1, currency="VND", min_subtotal=10**9), usd_line) == "currency"


def test_the_minimum_counts_the_lines_in_scope_only():
    code = promo(event_id=EVENT_A, min_subtotal=100_000)
    assert reason(code, [line("a", 60_000), line("b", 90_000, event=EVENT_B)]) == "below-minimum"
    assert reason(code, [line("a", 50_000, 2)]) is None


def test_below_minimum_says_how_far():
    with pytest.raises(InvalidPromo) as refused:
        check_applies(promo(min_subtotal=100), [line("a", 40)], NOW)
    assert refused.value.extra == {"reason": "below-minimum", "min_subtotal": 100, "subtotal": 40}


def test_use_limits_total_and_per_customer():
    assert uses_refusal(promo(max_uses=3, used=2), 0) is None
    assert uses_refusal(promo(max_uses=3, used=3), 0) == "total"
    assert uses_refusal(promo(max_uses_per_customer=1), 1) == "customer"
    assert uses_refusal(promo(max_uses_per_customer=1), None) is None  # customer not known yet
    assert uses_refusal(promo(), 99) is None
