"""Collect generated records and write them where Azure would: raw diagnostic records as hourly
`PT1H.json` blobs in the Storage layout, AuditLogs as a Log Analytics export."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

Record = dict[str, Any]


class LogBook:
    def __init__(self, folder: Path, tenant_id: str, subscription_id: str) -> None:
        self.folder = folder
        self.tenant_id = tenant_id
        self.subscription_id = subscription_id
        self._pending: dict[tuple[str, str], list[Record]] = defaultdict(list)
        self.counts: dict[str, int] = defaultdict(int)
        (folder / "AuditLogs.json").write_text("")

    def add(self, stream: str, moment: datetime, record: Record) -> None:
        """Streams: sp, mi, graph, riskevents, riskysp, activity, keyvault, workflow (raw records) and audit (Log
        Analytics rows)."""
        self._pending[(stream, moment.strftime("%Y/%m/%d/%H"))].append(record)
        self.counts[stream] += 1

    def flush_until(self, day: datetime) -> None:
        """Write every hour before `day` (so memory holds one day at a time)."""
        cutoff = day.strftime("%Y/%m/%d/%H")
        for key in sorted(key for key in self._pending if key[1] < cutoff):
            self._write(*key, self._pending.pop(key))

    def flush(self) -> None:
        for key in sorted(self._pending):
            self._write(*key, self._pending.pop(key))

    def _write(self, stream: str, hour: str, records: list[Record]) -> None:
        lines = "".join(json.dumps(record, separators=(",", ":")) + "\n" for record in records)
        if stream == "audit":
            with (self.folder / "AuditLogs.json").open("a", encoding="utf-8") as handle:
                handle.write(lines)
            return
        path = self._blob_path(stream, hour, records[0])
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(lines)

    def _blob_path(self, stream: str, hour: str, sample: Record) -> Path:
        y, m, d, h = hour.split("/")
        when = f"y={y}/m={m}/d={d}/h={h}/m=00/PT1H.json"
        if stream == "sp":
            return self.folder / "insights-logs-serviceprincipalsigninlogs" / f"tenantId={self.tenant_id}" / when
        if stream == "mi":
            return self.folder / "insights-logs-managedidentitysigninlogs" / f"tenantId={self.tenant_id}" / when
        entra = {"graph": "microsoftgraphactivitylogs", "riskevents": "serviceprincipalriskevents",
                 "riskysp": "riskyserviceprincipals"}
        if stream in entra:
            return self.folder / f"insights-logs-{entra[stream]}" / f"tenantId={self.tenant_id}" / when
        if stream == "activity":
            return (self.folder / "insights-activity-logs" / "resourceId="
                    / "SUBSCRIPTIONS" / self.subscription_id.upper() / when)
        container = "insights-logs-workflowruntime" if stream == "workflow" else "insights-logs-auditevent"
        return self.folder / container / ("resourceId=" + sample["resourceId"].strip("/")) / when
