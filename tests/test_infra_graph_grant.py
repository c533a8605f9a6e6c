"""infra/scripts/grant-graph-permissions.sh: idempotent, and patient while a new identity replicates.

The Azure CLI cannot reach Azure here, so `az` on the script's PATH is a small stand-in that keeps the
identity's app role assignments in a file, answers Graph reads as `az rest` would (failing with
Request_ResourceNotFound while the identity "replicates"), and records each deployment it is asked for."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from infra_helpers import INFRA

SCRIPT = INFRA / "scripts" / "grant-graph-permissions.sh"
READ_ROLES = ["9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30", "483bed4a-2ad3-4361-a73b-c83ccdbdc53c"]
MAIL_SEND = "b633e1c5-b582-4048-a93e-9f11b44c7e96"

FAKE_AZ = r"""#!/usr/bin/env bash
state="$FAKE_AZ_STATE"
echo "$*" >> "$state/calls"
case "$1 $2" in
  "cloud show") echo "https://graph.microsoft.com/" ;;
  "rest --method")
    if [[ -s "$state/invisible" ]]; then
      n=$(cat "$state/invisible"); echo $((n - 1)) > "$state/invisible"
      [[ $n -gt 0 ]] && { echo "ERROR: Request_ResourceNotFound: Resource '$principal' does not exist" >&2; exit 1; }
    fi
    cat "$state/granted" 2>/dev/null || true ;;
  "deployment group")
    echo 9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30 >> "$state/granted"
    echo 483bed4a-2ad3-4361-a73b-c83ccdbdc53c >> "$state/granted"
    [[ "$*" == *grantMailSend=true* ]] && echo b633e1c5-b582-4048-a93e-9f11b44c7e96 >> "$state/granted"
    echo deployed >> "$state/deployments" ;;
  *) echo "unexpected az call: $*" >&2; exit 2 ;;
esac
"""


@pytest.fixture
def run(tmp_path: Path):
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    (bin_dir / "az").write_text(FAKE_AZ)
    (bin_dir / "az").chmod(0o755)

    def run(**env: str) -> subprocess.CompletedProcess[str]:
        environ = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_AZ_STATE": str(state),
                   "AZURE_RESOURCE_GROUP": "rg-wiaudit", "AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID": "0000-principal",
                   "WIAUDIT_GRAPH_GRANT_PAUSE_SECONDS": "0", **env}
        return subprocess.run(["bash", str(SCRIPT)], env=environ, capture_output=True, text=True, check=False)

    run.state = state  # type: ignore[attr-defined]
    return run


def deployments(state: Path) -> int:
    path = state / "deployments"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_grants_once_then_has_nothing_to_do(run):
    first = run()
    assert first.returncode == 0, first.stderr
    assert "granted the Microsoft Graph app roles" in first.stdout and deployments(run.state) == 1
    assert "grantMailSend=false" in (run.state / "calls").read_text()
    again = run()
    assert again.returncode == 0 and "nothing to do" in again.stdout and deployments(run.state) == 1


def test_mail_send_only_on_request(run):
    assert run().returncode == 0
    assert MAIL_SEND not in (run.state / "granted").read_text()
    result = run(WIAUDIT_GRANT_MAIL_SEND_IN_ENTRA="true")
    assert result.returncode == 0 and deployments(run.state) == 2
    assert MAIL_SEND in (run.state / "granted").read_text()


def test_waits_for_the_identity_to_replicate(run):
    (run.state / "invisible").write_text("2")
    result = run()
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("has not replicated to Microsoft Graph yet") == 2 and deployments(run.state) == 1
    assert sorted((run.state / "granted").read_text().split()) == sorted(READ_ROLES)


def test_gives_up_with_a_message_and_needs_its_inputs(run):
    (run.state / "invisible").write_text("9")
    result = run(WIAUDIT_GRAPH_GRANT_ATTEMPTS="2")
    assert result.returncode == 1 and "gave up after 2 attempts" in result.stderr and deployments(run.state) == 0
    result = run(AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID="")
    assert result.returncode != 0 and "AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID" in result.stderr
