"""Development and test tooling, never part of the service: Redis and PostgreSQL for one
machine (``embedded``), ``make run`` / ``worker`` / ``migrate`` (``devserver``), the
development secrets, removing a run's keys (``keyspace``).

Used by the Makefile, ``loadtest/`` and ``tests/``; left out of the production image.
``service/`` and ``workers/`` never import it (``tests/test_layout.py``).
"""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Git-ignored: the embedded servers' data, the development secrets, test runs' folders.
DATA_DIR = PROJECT_ROOT / ".data"
