"""Synthesis layer: the FPGA tools, resource counts, Fmax and bitstream builds."""
