"""A Logic App story: a Sentinel playbook whose API connection signs in as a service principal is edited to read
secrets. Neither log names the other (the sign-ins name only the resource, the workflow log no identity and no
IP), so `wiaudit trail` shows its runs as probable links and the catalog ties them by time.
"""

from __future__ import annotations

from datetime import timedelta

from shared.sample_tenant import records
from shared.sample_tenant.identities import KEYVAULT_APP_ID, LOG_ANALYTICS_APP_ID
from shared.sample_tenant.stories import ATTACKER_IP, Scenario, StoryContext

PLAYBOOK = "Get-SentinelAlertsEvidence"
STOLEN = ("siem-forwarder-key", "eventhub-send-key", "servicenow-api-token")


def playbook_reads_secrets(ctx: StoryContext) -> Scenario:
    playbook = ctx.workloads["soc-playbooks"]
    rg = f"/subscriptions/{ctx.factory.subscription_id}/resourceGroups/rg-soc/providers"
    # Its habit: each time an incident triggers the playbook, its Azure Monitor Logs connection queries the workspace.
    playbook.workflow = f"{rg}/Microsoft.Logic/workflows/{PLAYBOOK}"
    playbook.resource, playbook.resource_app_id = "Log Analytics API", LOG_ANALYTICS_APP_ID
    playbook.sign_ins_per_day = 4
    edited = ctx.at(2, 2, 31)
    connection = f"{rg}/Microsoft.Web/connections/azuremonitorlogs-soc"
    body = {"properties": {"state": "Enabled", "parameters": {"$connections": {"value": {
        "azuremonitorlogs": {"connectionId": connection, "connectionName": "azuremonitorlogs-soc"}}}}}}
    for at, record in records.user_arm_write(ctx.factory.tenant_id, edited, upn="mallory@contoso.com", ip=ATTACKER_IP,
                                             operation="Microsoft.Logic/workflows/write",
                                             resource_id=playbook.workflow, body=body,
                                             correlation_id=ctx.factory.guid()):
        ctx.activity.book.add("activity", at, record)
    moment = ctx.at(2, 2, 47)
    ctx.activity.playbook_run(playbook, moment, playbook.home_ip, playbook.credential, actions=(
        ("Run_query_and_list_results", "Log Analytics API", LOG_ANALYTICS_APP_ID),
        ("Get_secrets", "Azure Key Vault", KEYVAULT_APP_ID)))
    vault = f"{rg}/Microsoft.KeyVault/vaults/kv-soc"
    for offset, secret in enumerate(STOLEN):
        read = moment + timedelta(seconds=4 + offset)
        ctx.activity.book.add("keyvault", read, records.keyvault_read(
            read, vault_id=vault, secret=secret, caller_id=playbook.sp.id, app_id=playbook.sp.appId,
            ip=playbook.home_ip, request_id=ctx.factory.guid()))
    return Scenario("playbook-reads-secrets", f"The Sentinel playbook {PLAYBOOK} was edited to read Key Vault secrets",
                    f"soc-playbooks is the service principal behind the Azure Monitor Logs connection of {PLAYBOOK}; "
                    "it only ever signed in to Log Analytics API, seconds after each run started. At 02:31 "
                    f"mallory@contoso.com saved the workflow from {ATTACKER_IP}; its next run, at 02:47, came with a "
                    f"sign-in of soc-playbooks to Azure Key Vault and read {len(STOLEN)} secrets from kv-soc. The "
                    "workflow log names no identity: only time and resource type tie the run to the principal.",
                    ("logic_app_security_run_new_signin_source", "keyvault_secret_reads_anomaly"), playbook.sp.id,
                    playbook.name, moment)


STORIES = (playbook_reads_secrets,)

# Workloads the stories act on: (kind, name, certificate?).
STORY_WORKLOADS: tuple[tuple[str, str, bool], ...] = (("playbook", "soc-playbooks", False),)
