"""Severities in Microsoft Sentinel's vocabulary, ordered so filters can ask for a minimum."""

from typing import Literal

Severity = Literal["Informational", "Low", "Medium", "High"]
SEVERITIES: tuple[Severity, ...] = ("Informational", "Low", "Medium", "High")


def severity_rank(severity: str) -> int:
    """0 for Informational up to 3 for High; case-insensitive; ValueError names the valid ones."""
    for rank, name in enumerate(SEVERITIES):
        if name.lower() == severity.lower():
            return rank
    raise ValueError(f"unknown severity {severity!r}; expected one of {', '.join(SEVERITIES)}")
