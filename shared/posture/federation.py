"""Federated credential posture: who outside the tenant can sign in as a workload identity.

A federated identity credential trusts tokens of one issuer for one subject. It is only as narrow
as that pair: a wildcard or flexible subject, a GitHub subject that any branch, tag or pull
request can produce without an environment's protection rules, or an issuer nobody here
controls all let more workloads in than the owner meant. Applications' credentials come from
Graph; user-assigned managed identities' are Azure resources and count when the snapshot holds
them. Unlike the secret and certificate checks, these include managed identities: a federated
credential on one is as much a door as on an application.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from shared.posture.checks import Hit, check, credential_evidence
from shared.posture.model import CredentialRecord

GITHUB_ISSUER_HOST = "token.actions.githubusercontent.com"
_CLAIM = re.compile(r"claims\[\s*'([^']*)'\s*\]")
_LITERAL = re.compile(r"'([^']*)'")


@check
def federated_credential_broad_subject(inventory, index, usage, params, now) -> list[Hit]:
    hits = []
    for rec in _federated(inventory):
        problem, broad = subject_problem(rec)
        if problem is None:
            continue
        severity = "High" if broad or rec.privileged else None
        privileged = f" ({'; '.join(rec.privileged_reasons)})" if rec.privileged else ""
        hits.append(_hit(rec, f"{_name(rec)} of {rec.principal_name}{privileged} accepts tokens for {problem}: pin "
                         "it to one protected environment or exact subject", severity, Problem=problem))
    return hits


@check
def federated_credential_unknown_issuer(inventory, index, usage, params, now) -> list[Hit]:
    trusted = [_issuer_key(pattern) for pattern in params["trusted_issuers"]]
    hits = []
    for rec in _federated(inventory):
        issuer = rec.issuer or ""
        if any(fnmatch.fnmatchcase(_issuer_key(issuer), pattern) for pattern in trusted):
            continue
        hits.append(_hit(rec, f"{_name(rec)} of {rec.principal_name} trusts {issuer or 'an empty issuer'}, not a known "
                         "identity provider: whoever holds that issuer's signing keys can sign in as it",
                         "High" if rec.privileged else None))
    return hits


@check
def federated_credential_on_privileged_identity(inventory, index, usage, params, now) -> list[Hit]:
    return [_hit(rec, f"{_name(rec)} lets {_who(rec)} act as {rec.principal_name} "
                      f"({'; '.join(rec.privileged_reasons)})")
            for rec in _federated(inventory) if rec.privileged]


def subject_problem(rec: CredentialRecord) -> tuple[str | None, bool]:
    """What the subject lets in beyond one workload, and whether that is broad (wildcard, flexible or any
    pull request) rather than one branch or tag without an environment; (None, False) when it is narrow."""
    if rec.subject_expression:
        return f"any token where {expression_text(rec.subject_expression)}", True
    if not rec.subject:
        return "any token its flexible claims expression matches (Graph v1.0 does not show it)", True
    subject = rec.subject
    if "*" in subject:
        return f"every subject matching {subject}", True
    if _host(rec.issuer) != GITHUB_ISSUER_HOST or ":environment:" in subject:
        return None, False
    repository, _, rest = subject.removeprefix("repo:").partition(":")
    if rest == "pull_request":
        return f"any pull request's workflow in {repository}", True
    for prefix, kind in (("ref:refs/heads/", "branch"), ("ref:refs/tags/", "tag")):
        if rest.startswith(prefix):
            name = rest.removeprefix(prefix)
            return f"every workflow on the {kind} {name} of {repository} (no environment)", False
    return f"GitHub workflows matching {subject} (no environment)", False


def _federated(inventory: Iterable[CredentialRecord]) -> list[CredentialRecord]:
    return [rec for rec in inventory if rec.type == "federated"]


def _hit(rec: CredentialRecord, summary: str, severity: str | None = None, **extra: Any) -> Hit:
    evidence = {**credential_evidence(rec), "Issuer": rec.issuer, "Subject": rec.subject,
                "SubjectExpression": rec.subject_expression, **extra}
    return Hit(rec.principal_id, rec.principal_name, summary, evidence, rec.key_id, severity)  # type: ignore[arg-type]


def _name(rec: CredentialRecord) -> str:
    return f'The federated credential "{rec.display_name or rec.key_id}"'


def _who(rec: CredentialRecord) -> str:
    if rec.subject_expression:
        return f"tokens where {expression_text(rec.subject_expression)} from {rec.issuer}"
    return f"tokens for {rec.subject or 'any subject'} from {rec.issuer}"


def expression_text(expression: str) -> str:
    """A flexible credential's claims expression in words: `claims['sub'] matches 'repo:x/*'` reads
    `the sub claim matches repo:x/*`."""
    words = _CLAIM.sub(lambda match: f"the {match.group(1)} claim", expression)
    return _LITERAL.sub(lambda match: match.group(1), words)


def _host(url: str | None) -> str:
    return (urlsplit(url or "").hostname or "").lower()


def _issuer_key(issuer: str) -> str:
    return issuer.strip().rstrip("/").lower()
