"""The version citybot reports (``citybot --version``, ``GET /healthz``): the installed
package's, from pyproject.toml, so a release changes it in one place.

Example::

    from bot.version import VERSION
    VERSION     # '0.1.0'
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["VERSION"]

try:
    VERSION = version("citybot")
except PackageNotFoundError:  # run from a source tree that was never installed
    VERSION = "0+unknown"
