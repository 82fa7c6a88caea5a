"""palhdl: open PAL logarithmic number formats, their golden model, gateware and board builds.

The root package holds the bottom layer (:mod:`palhdl.format`, :mod:`palhdl.tables`,
:mod:`palhdl.validate`, :mod:`palhdl.progress`) and the top one (:mod:`palhdl.cli`,
:mod:`palhdl.demo`, :mod:`palhdl.studies`); ``docs/architecture.md`` gives the layer rule.
"""
