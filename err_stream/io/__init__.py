"""Video input/output: decoders (source), encoder and output file (sink); colour is err_stream.colour."""

from .sink import EncoderSettings, PartialOutput, VideoSink, choose_encoder
from .source import DaliSource, PyAVSource, SourceFrame, VideoInfo, probe

__all__ = [
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
