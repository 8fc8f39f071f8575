"""Carts: holding seats per event part, and the cart view."""
