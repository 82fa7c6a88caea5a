"""The golden model (:mod:`palhdl.sim.golden`) and the simulation/host side of the array.

:mod:`palhdl.sim.golden` is layer 1 (below the gateware); :mod:`palhdl.sim.pysim` and
:mod:`palhdl.sim.driver` are layer 3 (they simulate and drive the gateware).
"""
