"""Auto-tuning of schedule knobs: extract kernels, search (Optuna, our GA), measure, record.

    model -> kernels (extract) -> one task per signature -> tuner (study per signature,
    Runner measures candidates) -> storage -> records used by woodpecker.compile

See docs/tuning.md. `tune_model` and `wpk tune` are the entry points.
"""
