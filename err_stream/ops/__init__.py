"""ERR's three special operations, each one function with backends chosen once per device."""

from ._backend import describe_backends, forced_backend
from .dct import dct2, idct2
from .rational import GroupRational, group_rational
from .scan import selective_scan

__all__ = ["dct2", "idct2", "group_rational", "GroupRational", "selective_scan", "describe_backends", "forced_backend"]
