"""Ticket tiers: the catalogue in PostgreSQL, its copy in Redis, availability."""
