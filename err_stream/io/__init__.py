"""Video input/output: sources (sources: the registry of file, DALI, ``.vpy`` and stream
inputs), encoder and container (sink), the atomic output file (output_file); colour
conversion is :mod:`err_stream.colour`. Names load on first use, so importing one module
of the package imports only what that module needs."""

from .._lazy import lazy_exports

_EXPORTS = {
    "EncoderSettings": ".sink",
    "VideoSink": ".sink",
    "choose_encoder": ".sink",
    "OutputFile": ".output_file",
    "PyAVSource": ".source",
    "SourceFrame": ".source",
    "VideoInfo": ".source",
    "probe": ".source",
}
__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
