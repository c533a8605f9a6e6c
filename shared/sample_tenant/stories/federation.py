"""Federated credential posture: trusts the federated-credential checks (shared/posture/checks/) must find.

The credentials are in the directory snapshot as the Graph inventory reads them (applications) or as
Azure holds them (a user-assigned managed identity); nothing in the logs, since the shape is the finding.
"""

from __future__ import annotations

from shared.directory.model import FederatedIdentityCredential
from shared.sample_tenant.stories import Scenario, Story, StoryContext

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"


def github_trust_for_any_branch(ctx: StoryContext) -> Scenario:
    infra = ctx.workloads["deploy-infra"]
    infra.app.federatedIdentityCredentials += [
        FederatedIdentityCredential(id=ctx.factory.guid(), name="any-branch", issuer=GITHUB_ISSUER,
                                    subject="repo:contoso/infra:ref:refs/heads/*"),
        FederatedIdentityCredential(id=ctx.factory.guid(), name="pull-requests", issuer=GITHUB_ISSUER,
                                    subject="repo:contoso/infra:pull_request"),
    ]
    return Scenario("github-trust-for-any-branch", "deploy-infra trusts every branch and every pull request",
                    "deploy-infra federates with GitHub for 'repo:contoso/infra:ref:refs/heads/*' and "
                    "'repo:contoso/infra:pull_request': anyone who can push a branch or open a pull request in "
                    "contoso/infra can deploy as it, no environment or reviewer in the way.",
                    ("federated_credential_broad_subject",), infra.sp.id, infra.name, ctx.at(0, 0))


def unknown_issuer_on_managed_identity(ctx: StoryContext) -> Scenario:
    agents = ctx.workloads["uami-build-agents"]
    issuer = "https://oidc.ci.fabrikam-build.net/"
    agents.sp.federatedIdentityCredentials.append(FederatedIdentityCredential(
        id=ctx.factory.guid(), name="build-agents", issuer=issuer, subject="system:serviceaccount:agents:builder"))
    return Scenario("unknown-issuer-on-managed-identity", "uami-build-agents trusts a cluster nobody here runs",
                    f"The user-assigned identity uami-build-agents trusts tokens from {issuer}, a Kubernetes issuer "
                    "that is neither AKS nor on the list of known providers: whoever runs that cluster can act as "
                    "the identity.", ("federated_credential_unknown_issuer",), agents.sp.id, agents.name,
                    ctx.at(0, 0))


def federation_on_global_administrator(ctx: StoryContext) -> Scenario:
    automation = ctx.workloads["tenant-automation"]
    automation.app.federatedIdentityCredentials.append(FederatedIdentityCredential(
        id=ctx.factory.guid(), name="tenant-config-production", issuer=GITHUB_ISSUER,
        subject="repo:contoso/tenant-config:environment:production"))
    return Scenario("federation-on-global-administrator", "GitHub's production environment can act as the Global "
                    "Administrator automation", "tenant-automation trusts the production environment of "
                    "contoso/tenant-config: a well-pinned trust, but whoever can approve that environment's "
                    "deployments now holds Global Administrator.",
                    ("federated_credential_on_privileged_identity",), automation.sp.id, automation.name,
                    ctx.at(0, 0))


STORIES: tuple[Story, ...] = (
    github_trust_for_any_branch, unknown_issuer_on_managed_identity, federation_on_global_administrator,
)

# Workloads the stories act on: (kind, name, certificate?)
STORY_WORKLOADS = (("pipeline", "deploy-infra", False), ("user-assigned", "uami-build-agents", False))
