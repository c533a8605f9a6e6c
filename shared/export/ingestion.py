"""Send rows to WorkloadIdentityFindings_CL through the Logs Ingestion API with `azure-monitor-ingestion`.

The client splits the rows into gzip'd chunks of at most 1 MB and posts each to
`{endpoint}/dataCollectionRules/{rule id}/streams/Custom-WorkloadIdentityFindings_CL`; the service answers 204 when it
accepted a chunk. Throttling (429, with Retry-After) and 408 are retried by azure-core; a chunk that still fails is
reported back by its rows' ChangeIds, so only those stay pending. The endpoint must be https (the bearer token of the
Function's managed identity travels with every chunk); plain http only on a loopback address, for a local stand-in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from azure.core.credentials import TokenCredential

from shared.export.records import STREAM
from shared.logsource.log_analytics import check_endpoint
from shared.settings import SettingsError, read_setting


@dataclass
class UploadOutcome:
    failed: set[str] = field(default_factory=set)  # ChangeIds of the rows in chunks the service did not accept
    reasons: list[str] = field(default_factory=list)


class LogsIngestionSink:
    def __init__(self, endpoint: str, rule_id: str, credential: TokenCredential, *, client: Any = None) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._plain_http = check_endpoint(self.endpoint, "the logs ingestion endpoint")
        self.rule_id = rule_id
        if client is None:
            from azure.monitor.ingestion import LogsIngestionClient

            client = LogsIngestionClient(self.endpoint, credential)
        self.client = client

    def close(self) -> None:
        self.client.close()

    def upload(self, rows: Sequence[Mapping[str, Any]]) -> UploadOutcome:
        outcome = UploadOutcome()

        def failed(error: Any) -> None:
            outcome.failed.update(row["ChangeId"] for row in error.failed_logs)
            outcome.reasons.append(_reason(error.error))

        options = {"enforce_https": False} if self._plain_http else {}
        self.client.upload(rule_id=self.rule_id, stream_name=STREAM, logs=list(rows), on_error=failed, **options)
        return outcome


def _reason(error: Exception) -> str:
    status = getattr(error, "status_code", None)
    message = (getattr(error, "message", None) or str(error)).splitlines()[0]
    return f"HTTP {status}: {message}" if status else f"{type(error).__name__}: {message}"


def sink_from_settings(credential: TokenCredential,
                       environ: Mapping[str, str] | None = None) -> LogsIngestionSink | None:
    """The sink the app settings describe, or None when findings stay out of Log Analytics."""
    endpoint = read_setting("FINDINGS_INGESTION_ENDPOINT", environ)
    rule_id = read_setting("FINDINGS_DCR_IMMUTABLE_ID", environ)
    if not endpoint and not rule_id:
        return None
    if not endpoint or not rule_id:
        missing = "FINDINGS_INGESTION_ENDPOINT" if not endpoint else "FINDINGS_DCR_IMMUTABLE_ID"
        raise SettingsError(f"setting {missing} is not set; findings go to Log Analytics only with both "
                            "FINDINGS_INGESTION_ENDPOINT and FINDINGS_DCR_IMMUTABLE_ID")
    try:
        return LogsIngestionSink(endpoint, rule_id, credential)
    except ValueError as error:
        raise SettingsError(f"setting FINDINGS_INGESTION_ENDPOINT: {error}") from None
