"""Per-layer analysis: capture every layer, infer the action it carries, find the layer that breaks equivariance."""
from eqcheck.layers.analysis import analyze_layers, parse_layer_types, recording_runner

__all__ = ["analyze_layers", "parse_layer_types", "recording_runner"]
