"""The `wpk` command line: one module per sub-command (`run`, `compile`, `tune`, `tune_report`,
`measure`), what they share in `common`, and the dispatcher in `main` (the console script
`wpk = woodpecker.cli.main:main`). Nothing is imported here, so that `wpk measure` on a GPU
host loads no MLIR."""
