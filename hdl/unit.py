"""The base class of palhdl's gateware units: arguments are checked before a unit exists.

Amaranth warns about every elaboratable that is created and never elaborated
(``UnusedElaboratable``), including one whose constructor raised. :class:`Unit` validates the
constructor's arguments in ``__new__``, before Amaranth starts tracking the object, so an
invalid argument raises and leaves no unit behind.
"""

from __future__ import annotations

from amaranth.lib import wiring

__all__ = ["Unit"]


class Unit(wiring.Component):
    """A ``wiring.Component`` whose keyword-only parameters are validated before it exists.

    A subclass implements :meth:`check_parameters` with the same keyword-only parameters as its
    ``__init__``; ``__init__`` takes the normalised values from it.
    """

    def __new__(cls, *args, **parameters):
        """Validate ``parameters`` (:meth:`check_parameters`), then create the unit."""
        if args:
            raise TypeError(
                f"{cls.__name__}() takes keyword arguments only, not {len(args)} positional"
            )
        cls.check_parameters(**parameters)
        return super().__new__(cls, src_loc_at=1)

    @classmethod
    def check_parameters(cls, **parameters):
        """Validate the constructor's parameters; return them normalised.

        Raises
        ------
        TypeError, ValueError
            A parameter has the wrong type or is out of range; the message names it.
        """
        raise NotImplementedError(f"{cls.__name__} does not implement check_parameters")
