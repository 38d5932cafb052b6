"""Chains, presets, the chunked runner, provenance and cancellation (no Qt, no torch)."""
