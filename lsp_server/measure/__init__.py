"""Measuring instruments built into fimls: ``fimls eval`` (quality), ``fimls bench`` (latency)."""
