"""Gateware: PAL arithmetic, conversions, MACs, baselines and the systolic array (Amaranth)."""
