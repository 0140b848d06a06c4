"""The ERR network and its configuration."""

from .config import ERRConfig
from .err import ERR

__all__ = ["ERR", "ERRConfig"]
