"""DVC stages: one module per stage, each a Prefect flow run with `python -m stages.<name>`."""
