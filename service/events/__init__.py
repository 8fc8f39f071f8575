"""Order events out (docs/events.md): the outbox written in the transaction of each change,
and their signed delivery to registered webhook endpoints by the worker."""
