"""Orders: checkout, payment outcomes, expiry."""
