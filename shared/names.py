"""One resolver for the names people type: a detection by GUID, file name or a unique prefix of either,
an identity by object id, app id, application object id or display name (or a unique prefix of one).

An exact match (any case) wins over a prefix; a name that fits several candidates fails and lists them;
a name that fits none fails saying so. Never a silent empty result.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class NameError_(KeyError):
    """A KeyError (callers already treat those as "not found") whose message prints as written."""

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownName(NameError_):
    """No candidate has this name."""


class AmbiguousName(NameError_):
    """Several candidates have this name; the message lists them."""


@dataclass(frozen=True)
class Named:
    """Something a person can name: its canonical id, every name it answers to, and how to list it."""

    id: str
    names: tuple[str, ...]
    label: str
    aliases: tuple[str, ...] = ()  # other ids of the same thing (an identity's app id and application object id)


def resolve(name: str, candidates: Iterable[Named], kind: str) -> Named:
    """The one candidate `name` means; UnknownName or AmbiguousName (listing the candidates) otherwise."""
    key = name.strip().lower()
    if not key:
        raise UnknownName(f"no {kind} named ''")
    pool = list(candidates)
    for matches in ([c for c in pool if key in _lower(c.names)],
                    [c for c in pool if any(n.startswith(key) for n in _lower(c.names))]):
        unique = list({c.id: c for c in matches}.values())
        if len(unique) == 1:
            return unique[0]
        if unique:
            raise AmbiguousName(f"ambiguous {kind} {name}, it could be: " + "; ".join(sorted(c.label for c in unique))
                                + ". Give more of the name, or an id")
    raise UnknownName(f"unknown {kind} {name}")


def _lower(names: Sequence[str]) -> list[str]:
    return [n.lower() for n in names if n]
