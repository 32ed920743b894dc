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
    """A 'did you mean ...?' hint, or None when nothing is close. A match but for case
    comes first (`Relu` -> `relu`, not `elu`); the cutoff 0.5 lets short names such as
    `h9` find `h1`."""
    word, choices = str(word), [str(c) for c in choices]
    same = [c for c in choices if c.lower() == word.lower()]
    if same:
        return f"did you mean {same[0]!r}?"
    scored = [(difflib.SequenceMatcher(None, word, c).ratio(), -i, c)
              for i, c in enumerate(choices)]  # ties go to the one listed first
    best = max(scored, default=None)
    return f"did you mean {best[2]!r}?" if best and best[0] >= 0.5 else None
