"""The FindingStore on Azure Table Storage (and Azurite, with the same code).

Tables (all named `<prefix><name>`; the prefix lets tests and tenants share an account):

- findings: PartitionKey = shard (first hex digit of the finding id), RowKey = finding id:
  the finding (evidence, context, entities as JSON strings). Same partition, RowKey
  `<finding id>_<occurrence id>`: one row per window it fired in, written in the same
  transaction as the finding row (so `occurrences` cannot drift).
- index: PartitionKey `s~<status>`, `v~<severity>`, `d~<detection>`, `p~<principal id or
  name, lower case>`; RowKey `<inverted last_detected>_<id>` (newest first); holds the id and
  the filter fields. One row per finding per index partition it belongs in.
- outbox: PartitionKey `o~<channel>`, RowKey `f~<finding id>`: what a channel has yet to announce;
  PartitionKey `x~loganalytics`: the changes Log Analytics has yet to accept (exports.py).
- runs: PartitionKey `id` (RowKey from the run id) and `started` (RowKey
  `<inverted start>_<run key>`): each run record twice, by id and newest first.
- credentials: the latest credential inventory, one snapshot partition (see credentials.py).
- notices: the owner notices sent, per credential, and those in flight (see notices.py).
- meta: PartitionKey `secret` (the continuation-token HMAC key), `checkpoint`, `lease`, `digest`
  (each channel's last delivered digest, see digests.py).

Lookups by id are point reads. A query reads one or a few index partitions over a row-key
range (time) and checks the remaining filters on the candidates (see query.py); nothing
scans a whole table. Writes are entity group transactions per partition, at most 100
operations each (see batch.py); `store.transactions` logs them. Unsafe user values in keys
are hashed (keys.py); every filter is parameterised.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from azure.data.tables import TableServiceClient

from shared.settings import SettingsError, read_setting, require_setting
from shared.store.credentials import CredentialInventory
from shared.store.digests import DigestRecords
from shared.store.enrichment import LateEnrichment
from shared.store.exports import ChangeExports
from shared.store.notices import NoticeLog
from shared.store.outbox import Outbox
from shared.store.query import FindingQueries
from shared.store.runs import RunsAndLeases


class TableFindingStore(FindingQueries, RunsAndLeases, Outbox, CredentialInventory, DigestRecords, LateEnrichment,
                        NoticeLog, ChangeExports):
    """Findings, runs, checkpoints, leases and the notification outbox in Table Storage.

    `channels` are the notification channels a new finding is queued for when first stored. `export_changes`
    queues every change of a finding for Log Analytics (exports.py).
    Call ensure_tables() once before use (it is idempotent).
    """

    def __init__(self, service: TableServiceClient, prefix: str = "wiaudit", channels: Sequence[str] = (),
                 export_changes: bool = False) -> None:
        super().__init__(service, prefix, channels, export_changes)

    @classmethod
    def from_settings(cls, credential: Any, environ: Mapping[str, str] | None = None, *, prefix: str = "wiaudit",
                      channels: Sequence[str] = ()) -> TableFindingStore:
        """FINDINGS_CONNECTION_STRING (Azurite, local) if set, else FINDINGS_TABLE_ENDPOINT with `credential`.

        In Azure the credential is the Function's managed identity: no account keys. Changes of findings (the
        audit's and the analysts' triage through the API or the CLI) are queued for Log Analytics when
        FINDINGS_INGESTION_ENDPOINT is set; the next audit sends them (an API or web-page triage's at once).
        """
        connection_string = read_setting("FINDINGS_CONNECTION_STRING", environ)
        if connection_string:
            service = TableServiceClient.from_connection_string(connection_string)
        else:
            endpoint = require_setting("FINDINGS_TABLE_ENDPOINT", environ)
            if credential is None:
                raise SettingsError("FINDINGS_TABLE_ENDPOINT needs a credential (the managed identity)")
            service = TableServiceClient(endpoint=endpoint, credential=credential)
        return cls(service, prefix=prefix, channels=channels,
                   export_changes=bool(read_setting("FINDINGS_INGESTION_ENDPOINT", environ)))
