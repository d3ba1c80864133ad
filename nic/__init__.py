"""nic: the reference learned image codec (mean-scale hyperprior, range-coded bitstream)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nic-ctc")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"
