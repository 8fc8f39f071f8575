"""Payments in: SePay's bank-transfer notifications, stored and matched to orders (docs/payments.md)."""
