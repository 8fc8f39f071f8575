"""PostgreSQL access: the pool, migrations, and nothing domain-specific."""
