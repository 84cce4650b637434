"""Computed conclusions: a notebook's verdict as data plus the sentences written from it.

Every number a notebook states in prose comes from a :class:`Finding`: the library checks a
document's claim against this run's results, fills the sentence with this run's numbers and
says plainly when the claim does not replicate. Displayed in a notebook, a finding renders
as Markdown (its ``table`` is shown separately).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

__all__ = ["Finding", "Findings", "fmt_pct", "verdict_word"]


def verdict_word(ok: bool | None) -> str:
    """``"reproduced"``, ``"not reproduced"`` or ``"undecided"`` (None)."""
    if ok is None:
        return "undecided"
    return "reproduced" if ok else "**not reproduced**"


def fmt_pct(v: float, digits: int = 0) -> str:
    """A percentage for prose (``"51 %"``); NaN as ``"n/a"``."""
    return "n/a" if v != v else f"{v:.{digits}f} %"


@dataclass
class Finding:
    """One claim of a document checked on this run.

    Attributes
    ----------
    claim : str
        The document's statement, in its own words.
    holds : bool or None
        Whether this run reproduces it (None: cannot be decided here).
    evidence : str
        The numbers of this run behind the verdict (one sentence).
    values : dict
        The same numbers, for code.
    """

    claim: str
    holds: bool | None
    evidence: str
    values: dict[str, Any] = field(default_factory=dict)
    #: the words for True / False (a document's claim: reproduced or not; a candidate
    #: explanation or a check: "yes" / "no")
    labels: tuple[str, str] = ("reproduced", "**not reproduced**")

    def markdown(self) -> str:
        word = "undecided" if self.holds is None else self.labels[0 if self.holds else 1]
        return f"* **{self.claim}** — {word}. {self.evidence}"

    def _repr_markdown_(self) -> str:
        return self.markdown()


@dataclass
class Findings:
    """The findings of one notebook section, with the table they were computed from."""

    title: str
    items: list[Finding]
    table: pd.DataFrame | None = None
    note: str = ""

    def markdown(self) -> str:
        lines = [f"**{self.title}**", ""] + [f.markdown() for f in self.items]
        if self.note:
            lines += ["", self.note]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def __getitem__(self, i: int) -> Finding:
        return self.items[i]

    @property
    def reproduced(self) -> list[bool | None]:
        return [f.holds for f in self.items]
