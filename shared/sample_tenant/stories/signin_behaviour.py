"""Sign-in behaviour and what follows a sign-in: a forgotten secret used instead of a certificate, a pipeline
token replayed from elsewhere, and an automation principal dumping its Key Vault.

These stories act on workloads the first week's stories already declare, so the tenant's minimum size does
not grow; each changes the workload's habits (a vault it reads) before the baseline is generated.
"""

from __future__ import annotations

from datetime import timedelta

from shared.sample_tenant.stories import Scenario, StoryContext

LEAKED_SECRET_IP = "203.0.113.45"  # a rented VPS (AS64501, RO)
REPLAY_IP = "198.51.100.23"  # a laptop on a hosting provider's VPN (AS64502, NL)


def forgotten_secret(ctx: StoryContext) -> Scenario:
    hr = ctx.workloads["hr-sync"]
    # The secret from before the move to certificates was never removed: older than the certificate, still valid.
    legacy = ctx.factory.secret("hr-sync-legacy", 400, 730)
    hr.app.passwordCredentials.append(legacy)
    moment = ctx.at(3, 20, 40)
    for minutes in (0, 35, 95):
        ctx.activity.application_session(hr, moment + timedelta(minutes=minutes), LEAKED_SECRET_IP, legacy)
    return Scenario("forgotten-secret", "hr-sync signs in with a secret it stopped using long ago",
                    "hr-sync has signed in only with its certificate; at 20:40 someone signed in as it with the old "
                    "secret 'hr-sync-legacy', never removed after the move to certificates and still in an old "
                    f"repository, from {LEAKED_SECRET_IP}, a network it never used, and updated users.",
                    ("sp_credential_type_drift", "workload_signin_new_network"), hr.sp.id, hr.name, moment)


def token_replay(ctx: StoryContext) -> Scenario:
    pipeline = ctx.workloads["deploy-billing"]
    moment = ctx.at(3, 9, 15)
    token = ctx.activity.app_sign_in(pipeline, moment, pipeline.home_ip, "0", pipeline.credential)
    ctx.activity.deploy(pipeline, moment + timedelta(minutes=2), "Microsoft.Web/sites/write", token, pipeline.home_ip)
    # The access token was printed in the build log; someone replays it from elsewhere before it expires.
    replay = moment + timedelta(minutes=41)
    ctx.activity.deploy(pipeline, replay, "Microsoft.Web/sites/config/write", token, REPLAY_IP)
    ctx.activity.deploy(pipeline, replay + timedelta(minutes=3), "Microsoft.Web/sites/slots/write", token, REPLAY_IP)
    return Scenario("token-replay", "The billing pipeline's token changes app settings from another network",
                    "deploy-billing signed in from its build agent at 09:15 and deployed; 41 minutes later the same "
                    f"access token, printed in the build log, rewrote the app's settings and a slot from {REPLAY_IP}, "
                    "an IP none of its sign-ins used. Two days later its secret was used from a Tor exit node.",
                    ("workload_token_replay_other_ip", "sp_arm_write_from_unseen_ip"), pipeline.sp.id,
                    pipeline.name, replay)


def vault_dump(ctx: StoryContext) -> Scenario:
    automation = ctx.workloads["tenant-automation"]
    # Its habit: at every run it reads the two secrets it needs from its own vault.
    automation.vault_id = (f"/subscriptions/{ctx.factory.subscription_id}/resourceGroups/rg-automation"
                           "/providers/Microsoft.KeyVault/vaults/kv-automation")
    automation.secrets = ["smtp-password", "itsm-api-key"]
    automation.sign_ins_per_day = 3
    moment = ctx.at(2, 1, 30)
    everything = [*automation.secrets, *(f"{kind}-{index}" for kind in ("service-account", "partner-token", "db-admin")
                                         for index in range(20))]
    ctx.activity.app_sign_in(automation, moment, automation.home_ip, "0", automation.credential)
    ctx.activity.application_secret_reads(automation, moment + timedelta(seconds=30), automation.home_ip,
                                          automation.credential, secrets=everything, listing=True)
    return Scenario("vault-dump", "tenant-automation lists its vault and reads every secret in it",
                    "At 01:30, from the automation host, tenant-automation listed kv-automation and read all "
                    f"{len(everything)} secrets in under a minute; every other day it reads two, once per run.",
                    ("keyvault_secret_reads_anomaly",), automation.sp.id, automation.name, moment)


STORIES = (forgotten_secret, token_replay, vault_dump)

# Workloads the stories act on: (kind, name, certificate?). All are declared by the first week's stories.
STORY_WORKLOADS: tuple[tuple[str, str, bool], ...] = ()
