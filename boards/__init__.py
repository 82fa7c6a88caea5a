"""Boards: FPGA devices, board platforms and top levels, and the host link they serve."""
