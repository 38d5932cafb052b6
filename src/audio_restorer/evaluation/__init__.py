"""Measuring restoration: degradation simulator, quality metrics and benchmark support."""
