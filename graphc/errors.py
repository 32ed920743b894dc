"""Errors users see: each names the place (file, JSON path or node id) and says what to do."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class GraphcError(Exception):
    """Base class of every error graphc raises on purpose."""


class SpecError(GraphcError, ValueError):
    """A spec (JSON or Python) that graphc cannot accept.

    `place` is a JSON path such as ``nodes[3].attrs.units`` or a node id; `hint` says
    what to do. ``str(err)`` reads ``<source>: <place>: <message> (<hint>)``.
    """

    def __init__(self, message: str, place: str | None = None, hint: str | None = None,
                 source: str | None = None):
        self.message, self.place, self.hint, self.source = message, place, hint, source
        super().__init__(self._text())

    def _text(self) -> str:
        parts = [p for p in (self.source, self.place) if p]
        text = ": ".join(parts + [self.message])
        return f"{text} ({self.hint})" if self.hint else text

    def with_source(self, source: str | None) -> SpecError:
        if source and not self.source:
            self.source = source
            self.args = (self._text(),)
        return self


class InputError(GraphcError, ValueError):
    """A value passed at run time (an array, a --set, a data file) that does not fit."""


class CompileError(GraphcError, RuntimeError):
    """A backend could not compile or load a model."""


class ShapeWarning(UserWarning):
    """Shapes that are legal but probably not meant (a broadcast that squares a dim)."""


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A 'did you mean ...?' hint, or None when nothing is close."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None
