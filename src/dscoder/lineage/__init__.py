"""Lineage: from a training token back to the source bytes and the stage decisions that let it
through, and data-level diffs between two versions of the pipeline's outputs.

Built only from what the stages write (Parquet outputs, audits, the packer's token index);
nothing here re-reads the corpus beyond those indexes. Pure library: no Prefect, no DVC —
a `Reader` (relative path, columns → Arrow table) lets `flows/diff.py` read outputs at a git
revision through DVC while tests read a temp directory.

  order     training (step, row) → block index (the trainer's seeded permutation)
  index     `Lineage`: the stage outputs of one pipeline version, and per-file decisions
  trace     trace a token offset, a training step/row, a repository or a file path
  diff      the training-set difference between two `Lineage`s, with the decision that changed
  metrics   per-language metrics (`by_language`) for the dedup, decontam and pack reports
"""
