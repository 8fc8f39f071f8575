"""ticket-cart's load tool: ``python -m loadtest run|bench``; see docs/performance.md."""
