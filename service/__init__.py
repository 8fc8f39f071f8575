"""ticket-cart: the HTTP service (Litestar). workers/ holds the arq worker, devtools/ `make run`."""
