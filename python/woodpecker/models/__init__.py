"""Test and demo networks: `onnx.helper` builders and the bundled `tiny_resnet.onnx`."""

from __future__ import annotations

from pathlib import Path

from woodpecker.models.builders import small_mlp, tiny_resnet

BUNDLED_MODEL = "tiny_resnet.onnx"


def bundled_model_path() -> Path:
    """Path of the bundled demo model (tiny_resnet, image 64, batch 1; see tools/make_bundled_model.py)."""
    return Path(__file__).resolve().parent / BUNDLED_MODEL


__all__ = ["BUNDLED_MODEL", "bundled_model_path", "small_mlp", "tiny_resnet"]
