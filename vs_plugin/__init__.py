"""ERR as a VapourSynth filter.

    import vapoursynth as vs
    from vs_plugin import err
    clip = err(clip, preset="uhd-ll")          # or weights="UHD-LL.pth"

VapourSynth itself is optional for err-stream: install it with ``pip install 'err-stream[vs]'``.
"""

from .filter import err

__all__ = ["err"]
