"""dscoder: the DeepSeek-Coder recipe as a reproducible DVC + Prefect pipeline.

`dscoder` is the pure library layer: it never imports Prefect or DVC;
orchestration lives in `stages/` and `flows/`.
"""

__version__ = "0.1.0"
