"""The arq worker: cron jobs that keep Redis honest (sweep, reconcile) and finish what the
API leaves to time (stuck checkouts, unpaid orders). Declared in ``workers.main``."""
