"""Before the first frame: the one probe of the input and the one pre-flight check of the output.

:func:`plan` turns (input, output, :class:`~.options.TranscodeOptions`) into a
:class:`TranscodePlan`: the endpoints, the source kind that reads the input (io/sources.py),
what the input is (probed once), the output container and the encoder settings, proven by a
dry run of the output where it can be (io/preflight.py). Everything a user can get wrong
fails here, before a model is loaded: a missing file, an output that exists or is being
written, a stream the container refuses, an option the encoder does not have.

A stream (a pipe or URL) can be read only once: it is probed when :func:`~.execute.execute`
opens it, which then completes the plan with :func:`with_input` (the same checks).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

from ..colour.policy import resolve
from ..errors import UserError
from ..io.endpoints import Endpoint, endpoint, low_delay_encoder_options, output_format
from ..io.input_options import options_for_input
from ..io.output_file import OutputFile
from ..io.preflight import plan_output
from ..io.sink import CONTAINERS, EncoderSettings, choose_encoder
from ..io.source import VideoInfo, check_alpha
from ..io.sources import SourceKind, choose_source
from .options import TranscodeOptions

log = logging.getLogger(__name__)

# Frames a live run holds between its decoder and its encoder unless max_delay says otherwise.
DEFAULT_MAX_DELAY = 8


@dataclass(frozen=True)
class TranscodePlan:
    """A checked transcode, ready to :func:`~.execute.execute`.

    ``source``: the kind of input (io/sources.py); ``info``: what it is (None for a stream
    until it is opened); ``container``: the output muxer; ``encoder``: the output video stream
    (None for a stream input until it is opened); ``max_delay``: a live run's bound on frames
    in flight (None: not a live run)."""

    input: Endpoint
    output: Endpoint
    options: TranscodeOptions
    source: SourceKind
    container: str
    info: VideoInfo | None = None
    encoder: EncoderSettings | None = None
    max_delay: int | None = None

    @property
    def live(self) -> bool:
        return self.max_delay is not None


def plan(input: str | Path, output: str | Path, options: TranscodeOptions = TranscodeOptions(), *,
         encoder: EncoderSettings | None = None, check_output: bool = True) -> TranscodePlan:
    """Check a transcode of ``input`` into ``output`` and decide how it runs.

    ``encoder``: settings already proven for this output (a batch's pieces share the ones
    planned for the whole file): used as they are. ``check_output=False`` leaves the
    destination file unchecked (a batch's dry run, before its folders exist).

    Raises :class:`~err_stream.errors.UserError` (a
    :class:`~err_stream.errors.SettingError` for a bad setting) for everything found wrong."""
    in_ep, out_ep = endpoint(input), endpoint(output)
    live = in_ep.is_network or out_ep.is_network or options.live.max_delay is not None
    if options.live.drop_late and not live:
        raise UserError("applies to live runs (a network input or output)", option="drop_late", value=True,
                        instead=["max_delay"], instead_for="to make this run live,")
    if options.live.realtime and not in_ep.is_file:
        raise UserError(f"applies to file inputs: {in_ep.label()} comes at its own rate", option="realtime", value=True)
    container = output_format(out_ep, options.encode.format)
    if out_ep.is_file and check_output:
        # The output file's checks only: it is locked when the run starts writing.
        OutputFile(out_ep.path, overwrite=options.run.overwrite, source=in_ep.path if in_ep.is_file else None)
    # The input's FFmpeg options, checked against what FFmpeg takes for this URL (a file refuses them).
    options_for_input(in_ep, options.decode.input_opt, options.decode.input_format)
    source = choose_source(in_ep, options.decode)
    planned = TranscodePlan(in_ep, out_ep, options, source, container,
                            max_delay=(options.live.max_delay or DEFAULT_MAX_DELAY) if live else None)
    info = source.probe(in_ep, options.decode)
    return planned if info is None else with_input(planned, info, encoder)


def with_input(planned: TranscodePlan, info: VideoInfo, encoder: EncoderSettings | None = None) -> TranscodePlan:
    """The plan completed with what the input is: the alpha rule, then the output stream
    (proven by a dry run of the output when both ends are files; a stream cannot be read
    twice, nor written twice), low-delay encoding for a live run."""
    options, out = planned.options, planned.output
    check_alpha(info, options.decode.drop_alpha)
    # A colour matrix there is no conversion for is refused here, before any model loads
    # (the colour stage resolves it again and logs the guesses: colour_conversion).
    resolve(info.tags, info.width, info.height)
    if encoder is None:
        copy_data = not options.streams.no_data
        if out.is_file and planned.input.is_file and CONTAINERS.get(out.path.suffix.lower()) == planned.container:
            encoder = plan_output(info, planned.source, out.path, options.encode, copy_data)
        else:
            name = out.path if out.is_file else Path(f"stream.{planned.container}")
            encoder = choose_encoder(info, name, options.encode, container=planned.container,
                                     copied=planned.source.copied_streams(info))
    if planned.live:
        # No lookahead, no B-frames, no frame threads (each holds frames back), a keyframe a
        # second (a player joining late starts within it); the user's own encoder_opt keys win.
        user = {item.partition("=")[0] for item in options.encode.encoder_opt}
        encoder = encoder.with_options(low_delay_encoder_options(encoder.codec, info.average_rate), keep=user)
    return dataclasses.replace(planned, info=info, encoder=encoder)

