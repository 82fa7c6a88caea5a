"""``palhdl bench``: PAL against INT8, FP8, MX and BF16, every measurement in one run."""
