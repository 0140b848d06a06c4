"""Video input/output: colour conversion (colour), decoders (source), encoder and output file (sink)."""

from .colour import ColourTags, HdrMetadata, PlaneFormat, YCbCrConverter
from .sink import EncoderSettings, PartialOutput, VideoSink, choose_encoder
from .source import DaliSource, PyAVSource, SourceFrame, VideoInfo, probe

__all__ = [
    "ColourTags",
    "HdrMetadata",
    "PlaneFormat",
    "YCbCrConverter",
    "EncoderSettings",
    "PartialOutput",
    "VideoSink",
    "choose_encoder",
    "DaliSource",
    "PyAVSource",
    "SourceFrame",
    "VideoInfo",
    "probe",
]
