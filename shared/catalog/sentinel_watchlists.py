"""The tier model's lists as Microsoft Sentinel watchlists, read by the exported rules.

A rule parameter whose default comes from the tier model (`defaultFrom`) holds a few hundred names; inlined, the
privileged-grant rule's query is over Sentinel's 10,000 characters. In the export such a parameter reads its
watchlist instead (`_GetWatchlist('<alias>')`), and the export writes the watchlist beside the rules: a CSV to
upload by hand and a `Microsoft.SecurityInsights/watchlists` resource in the ARM templates. The watchlist is where
a team adds its own names in Sentinel, as DETECTION_PARAMETERS is for the Functions app.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from shared.catalog.model import Detection, Parameter
from shared.catalog.render import default_value, kql_literal

PROVIDER = "Workload Identity Auditor"
SEARCH_KEY = "SearchKey"  # the column _GetWatchlist gives the watchlist's itemsSearchKey under


@dataclass(frozen=True)
class Watchlist:
    alias: str
    display_name: str
    column: str  # the CSV's one column, also the items' search key
    description: str
    items: tuple[str, ...]

    @property
    def file_name(self) -> str:
        return f"{self.alias}.csv"

    def csv(self) -> str:
        """The watchlist as Sentinel takes it: a header line naming the column, then one name per line."""
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow([self.column])
        writer.writerows([item] for item in self.items)
        return text.getvalue()


_LISTS = {
    "applicationPermissions": ("WiauditTier0AppPermissions", "Tier-0 application permissions", "Permission",
                               "Application permissions (app role values) the tier model rates tier 0"),
    "directoryRoles": ("WiauditTier0EntraRoles", "Tier-0 Entra roles", "Role",
                       "Microsoft Entra role names the tier model rates tier 0"),
}


def watchlist(parameter: Parameter) -> Watchlist | None:
    """The watchlist a parameter reads in Sentinel: one for a tier-model default, None for a rule's own default."""
    if parameter.defaultFrom is None:
        return None
    alias, name, column, description = _LISTS[parameter.defaultFrom]
    return Watchlist(alias, f"{name} ({PROVIDER})", column,
                     f"{description} (shared/directory/tiers/). Add your tenant's own names here; redeploying the "
                     f"export's template puts back the tier model's list.",
                     tuple(default_value(parameter)))


def watchlists(detection: Detection) -> list[Watchlist]:
    """The watchlists the exported rule reads, by alias."""
    found = {wl.alias: wl for wl in map(watchlist, detection.parameters.values()) if wl is not None}
    return [found[alias] for alias in sorted(found)]


def sentinel_parameter_lets(detection: Detection) -> str:
    """The parameters as `let`s: a tier-model list from its watchlist, any other with its default."""
    return " ".join(f"let {name} = {_sentinel_value(parameter)};" for name, parameter in detection.parameters.items())


def _sentinel_value(parameter: Parameter) -> str:
    source = watchlist(parameter)
    if source is None:
        return kql_literal(parameter, default_value(parameter))
    return f"toscalar(_GetWatchlist('{source.alias}') | summarize make_list({SEARCH_KEY}))"
