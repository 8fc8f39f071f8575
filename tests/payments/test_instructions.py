"""The buyer's payment instructions: with the bank account configured, the checkout's answer
and GET /api/orders/{id} say where to transfer and carry a VietQR image URL; without it
(or for an order not in VND) those fields are left out, not null."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import msgspec

from tests.api import api_client
from tests.payments.conftest import buy

BANK = {
    "payment_bank_id": "970415",
    "payment_bank_name": "VietinBank",
    "payment_account_number": "113366668888",
    "payment_account_name": "CONG TY VE SU KIEN",
}
PLAIN = {"code", "amount", "due_at"}


async def test_a_configured_account_is_shown_with_a_vietqr_image(settings, clean_state):
    async with api_client(msgspec.structs.replace(settings, **BANK)) as api:
        order = await buy(api, price=250_000, quantity=2)
        payment = order["payment"]
        assert payment["bank_id"] == "970415" and payment["bank_name"] == "VietinBank"
        assert payment["account_number"] == "113366668888" and payment["account_name"] == "CONG TY VE SU KIEN"
        assert payment["transfer_content"] == payment["code"] and payment["amount"] == 500_000
        url = urlsplit(payment["qr_url"])
        assert (url.scheme, url.netloc, url.path) == (
            "https",
            "img.vietqr.io",
            "/image/970415-113366668888-compact2.png",
        )
        assert parse_qs(url.query) == {
            "amount": ["500000"],
            "addInfo": [payment["code"]],
            "accountName": ["CONG TY VE SU KIEN"],
        }
        read = await api.get(f"/api/orders/{order['id']}", headers={"X-Order-Token": order["access_token"]})
        assert read.json()["payment"] == payment


async def test_without_the_account_only_the_code_amount_and_due_time_are_sent(settings, clean_state):
    async with api_client(msgspec.structs.replace(settings, payment_account_number="113366668888")) as api:
        order = await buy(api)
        assert set(order["payment"]) == PLAIN
        read = await api.get(f"/api/orders/{order['id']}", headers={"X-Order-Token": order["access_token"]})
        assert set(read.json()["payment"]) == PLAIN


async def test_an_order_not_in_vnd_gets_no_bank_transfer_details(settings, clean_state):
    async with api_client(msgspec.structs.replace(settings, **BANK)) as api:
        order = await buy(api, price=1_000, currency="USD")
        assert set(order["payment"]) == PLAIN


async def test_the_account_name_is_optional_and_the_bank_name_defaults_to_its_id(settings, clean_state):
    bank = {**BANK, "payment_bank_name": None, "payment_account_name": None, "payment_qr_template": "qr_only"}
    async with api_client(msgspec.structs.replace(settings, **bank)) as api:
        payment = (await buy(api))["payment"]
    assert payment["bank_name"] == "970415" and "account_name" not in payment
    url = urlsplit(payment["qr_url"])
    assert url.path.endswith("-qr_only.png") and "accountName" not in parse_qs(url.query)
