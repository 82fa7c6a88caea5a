"""Studies behind the documentation's tables, each a ``palhdl`` subcommand.

- :mod:`~palhdl.studies.accuracy_report` (``palhdl accuracy``): :mod:`~palhdl.studies.accuracy`
  on the data, metrics and quantisers of :mod:`~palhdl.studies.quantisation`.
- :mod:`~palhdl.studies.cost` (``palhdl cost``): synthesis cost of the units and MACs.
- :mod:`~palhdl.studies.encode_bench` (``palhdl bench-encode``): golden-model encode speed.
"""
