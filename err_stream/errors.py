"""Typed errors. The library raises them; each front end words them in its own vocabulary.

* :class:`UserError` (exit 1): something the user can fix: a bad path, an unreadable or
  corrupt input, an unsupported stream, a bad option. One line, saying what to do.
* :class:`SettingError`: a :class:`UserError` about one setting, carrying the setting's
  name and the value given, so the command line can say ``--tile 64x64: ...`` and the
  VapourSynth filter ``tile=[64, 64]: ...`` from the same error.
* :class:`ProcessingError` (exit 2): a failure while processing valid input.

Library code names settings by their neutral names (``device``, ``precision``, ``tile``,
``memory_budget``, ``weights``, ``preset``, ``overwrite``, ``timeout``, ...), never by a front
end's spelling of them: a setting at fault is the error's ``option``, a setting to pass instead
is in ``instead``, and a setting mentioned inside the message is written ``named("timeout")``.
:meth:`UserError.describe` and :meth:`ProcessingError.describe` take the front end's speller
(``str(error)`` is the library's own plain wording).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

# A front end's way to write a setting: (name, value or NO_VALUE) -> e.g. "--tile 64x64",
# "tile=[64, 64]" or, for a suggestion without a value, "--weights FILE".
Speller = Callable[[str, object], str]
NO_VALUE = object()


def plain_speller(option: str, value: object = NO_VALUE) -> str:
    """The library's own wording (used by ``str(error)``): ``tile=(64, 64)``, ``weights``."""
    return option if value is NO_VALUE else f"{option}={value!r}"


# A setting named inside a message travels between two private-use characters until a front
# end spells it (they cannot occur in a setting's name, nor in the paths messages quote).
_NAMED = re.compile("\ue000([A-Za-z0-9_]+)\ue001")


def named(option: str) -> str:
    """``option`` mentioned inside an error message, to be written the way the front end
    writes it: ``f"no stream arrived within {named('timeout')} 5 s"`` reads "--timeout 5 s"
    on the command line and "timeout 5 s" from the library."""
    return f"\ue000{option}\ue001"


def spell_named(text: str, spell: Speller) -> str:
    """``text`` with every :func:`named` setting written by ``spell``."""
    return _NAMED.sub(lambda m: spell(m.group(1), NO_VALUE), text)


class UserError(Exception):
    """Something the user can fix. ``option``/``value``: the setting at fault, if one is;
    ``instead``: what the user could pass instead, each a setting's name or a
    ``(name, value)`` pair, worded by the front end; ``instead_for``: what that gets the user
    (e.g. "for whole frames")."""

    exit_code = 1

    def __init__(
        self, reason: str, *, option: str | None = None, value: object = NO_VALUE,
        instead: Sequence[str | tuple[str, object]] = (), instead_for: str = "",
    ) -> None:
        self.reason = reason
        self.option = option
        self.value = value
        self.instead = tuple(instead)
        self.instead_for = instead_for
        super().__init__(self.describe(plain_speller))

    def describe(self, spell: Speller, setting: bool = True) -> str:
        """The message, with settings written the way ``spell`` writes them; ``setting=False``
        leaves out the leading setting and value (where the front end shows them itself)."""
        reason = spell_named(self.reason, spell)
        msg = reason if self.option is None or not setting else f"{spell(self.option, self.value)}: {reason}"
        if self.instead:
            msg += "; " + (self.instead_for + " " if self.instead_for else "") + "pass " + " or ".join(spell(*o) if isinstance(o, tuple) else spell(o, NO_VALUE) for o in self.instead)
        return msg


class SettingError(UserError, ValueError):
    """A setting whose value cannot work (a ValueError too, for API callers)."""

    def __init__(
        self, option: str, value: object, reason: str, *,
        instead: Sequence[str | tuple[str, object]] = (), instead_for: str = "",
    ) -> None:
        super().__init__(reason, option=option, value=value, instead=instead, instead_for=instead_for)


class ProcessingError(Exception):
    """A failure while processing valid input (exit 2). Its message may name settings with
    :func:`named`; :meth:`describe` words them for a front end."""

    exit_code = 2

    def __init__(self, message: str = "") -> None:
        self.reason = message
        super().__init__(spell_named(message, plain_speller))

    def describe(self, spell: Speller) -> str:
        return spell_named(self.reason, spell)
