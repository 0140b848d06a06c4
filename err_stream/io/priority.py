"""CPU priority of the codec threads.

Decoding and encoding run at a lower CPU priority than the thread that drives the model:
a software encoder spreads over every core, and the model thread (kernel launches on a
GPU, the model itself on CPU) must never queue behind it. A lower priority costs the codecs
nothing when cores are idle.
"""

from __future__ import annotations

import os
import threading

CODEC_NICENESS = 10


def lower_thread_priority(step: int = CODEC_NICENESS) -> None:
    """Lower the calling thread's priority (Linux: niceness is per thread, and threads it
    creates later inherit it). Does nothing where that is not possible."""
    try:
        now = os.getpriority(os.PRIO_PROCESS, 0)
        os.setpriority(os.PRIO_PROCESS, 0, min(19, now + step))
    except (AttributeError, OSError):
        pass


def call_at_lower_priority(fn):
    """Run ``fn`` in a short-lived thread of lower priority and return its result; threads
    that ``fn`` starts (an encoder's worker pool) keep that priority."""
    result: dict = {}

    def body():
        lower_thread_priority()
        try:
            result["value"] = fn()
        except BaseException as e:  # re-raised in the caller
            result["error"] = e

    t = threading.Thread(target=body, name="err-stream-open-encoder")
    t.start()
    t.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")
