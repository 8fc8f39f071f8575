"""Promo codes: definitions (admin), applying one to a cart, and its use at checkout."""
