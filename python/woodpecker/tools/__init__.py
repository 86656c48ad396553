"""Command-line tools: `wpk-opt` (woodpecker.tools.wpk_opt) and their diagnostics support."""
