"""DVC stages: one module per stage, each a Prefect flow run with `python -m stages.<name>`."""

import os

# Before Prefect reads its settings (a stage module imports Prefect right after this package):
# Prefect's own wait for a temporary server (20 s) is too short on a loaded 2-core machine.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
