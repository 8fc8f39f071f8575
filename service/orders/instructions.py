"""What a buyer needs to pay an order by bank transfer: the code to write, the amount, the
due time and, when the operator configured the account (PAYMENT_BANK_ID and
PAYMENT_ACCOUNT_NUMBER), the bank, the account and a VietQR image that fills all of it in
a banking app. Pure functions, no I/O.

The QR image is VietQR's Quick Link (https://www.vietqr.io/qr-dong.md):
``https://img.vietqr.io/image/<BANK_ID>-<ACCOUNT_NO>-<TEMPLATE>.png?amount=&addInfo=&accountName=``;
``addInfo`` is the payment code alone (banks cap the text, and SePay finds the code in it).
VietQR moves VND only: an order in another currency gets no bank details.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote, urlencode

import msgspec

from service.orders.dto import Payment
from service.settings import Settings

VIETQR_IMAGE = "https://img.vietqr.io/image/"
QR_CURRENCY = "VND"


class BankAccount(msgspec.Struct, frozen=True):
    bank_id: str  # a BIN (970415) or VietQR short name (Vietinbank, MB, ...)
    bank_name: str
    account_number: str
    account_name: str | None
    qr_template: str


def bank_account(settings: Settings) -> BankAccount | None:
    """The account buyers transfer to, or None when the operator configured none."""
    if not settings.payment_bank_id or not settings.payment_account_number:
        return None
    return BankAccount(
        bank_id=settings.payment_bank_id,
        bank_name=settings.payment_bank_name or settings.payment_bank_id,
        account_number=settings.payment_account_number,
        account_name=settings.payment_account_name,
        qr_template=settings.payment_qr_template,
    )


def vietqr_url(bank: BankAccount, amount: int, text: str) -> str:
    query = {"amount": str(amount), "addInfo": text}
    if bank.account_name:
        query["accountName"] = bank.account_name
    path = quote(f"{bank.bank_id}-{bank.account_number}-{bank.qr_template}.png")
    return f"{VIETQR_IMAGE}{path}?{urlencode(query, quote_via=quote)}"


def payment_instructions(
    code: str, amount: int, due_at: dt.datetime, currency: str, bank: BankAccount | None
) -> Payment:
    if bank is None or currency != QR_CURRENCY:
        return Payment(code=code, amount=amount, due_at=due_at)
    return Payment(
        code=code,
        amount=amount,
        due_at=due_at,
        bank_id=bank.bank_id,
        bank_name=bank.bank_name,
        account_number=bank.account_number,
        account_name=bank.account_name,
        transfer_content=code,
        qr_url=vietqr_url(bank, amount, code),
    )
