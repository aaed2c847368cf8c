"""The exceptions geoplan raises for a user's mistake.

Every message names where the problem is (file, layer, feature id) and what to do about
it. The command line prints one line per problem and exits with code 2; a traceback
is a bug, never the way a user hears about their own input.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, located as precisely as possible.

    Parameters
    ----------
    message
        What is wrong and how to fix it.
    file
        The file the problem was found in, if any.
    layer
        The layer name, if any.
    feature_id
        The id of the offending feature, if any.
    """

    message: str
    file: str | None = None
    layer: str | None = None
    feature_id: str | None = None

    def __str__(self) -> str:
        where = [
            part
            for part in (
                self.file,
                f"layer {self.layer}" if self.layer else None,
                f"feature {self.feature_id}" if self.feature_id is not None else None,
            )
            if part
        ]
        return f"{', '.join(where)}: {self.message}" if where else self.message


class GeoplanError(Exception):
    """Base class: something the user can fix, reported without a traceback.

    Parameters
    ----------
    problems
        One or more problems, or a plain message.
    """

    def __init__(self, problems: str | Problem | list[Problem]) -> None:
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class LayerError(GeoplanError, ValueError):
    """An input layer is missing, unreadable or breaks the layer contract."""


class CRSError(LayerError):
    """A layer has no coordinate reference system, or one that cannot be used."""


class SettingsError(GeoplanError, ValueError):
    """The catalogue or a settings file has an unknown key or a wrong value."""


class PlanningError(GeoplanError):
    """The plan cannot be made from otherwise valid inputs."""


class OutputError(GeoplanError, OSError):
    """An output cannot be written where it was asked for."""
