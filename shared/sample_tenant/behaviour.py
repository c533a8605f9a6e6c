"""Everyday activity of the sample tenant: the background every detection must stay silent on.

Pipelines sign in and deploy, jobs call Graph, an HR sync updates users, managed identities read
their Key Vault secrets and rotate their own certificates. A credential past its end date makes
sign-ins fail, as it would.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import datetime, timedelta

from shared.directory.model import PasswordCredential
from shared.sample_tenant import records
from shared.sample_tenant.identities import GRAPH_APP_ID, KEYVAULT_APP_ID, IdentityFactory, Workload
from shared.sample_tenant.logbook import LogBook

DEPLOY_OPERATIONS = ("Microsoft.Web/sites/write", "Microsoft.Resources/deployments/write",
                     "Microsoft.Web/sites/config/write", "Microsoft.Storage/storageAccounts/write")


class Activity:
    def __init__(self, factory: IdentityFactory, book: LogBook, tenant_id: str, now: datetime) -> None:
        self.factory = factory
        self.rng: random.Random = factory.rng
        # When and how often the baseline runs has its own stream, drawn before any story runs: adding or changing
        # a story must not move every background sign-in (and with it what each story's rules see around it).
        self.schedule = random.Random(self.rng.getrandbits(64))
        # Graph requests draw from their own stream too, seeded without a draw from the others: the Graph activity
        # log came later than the other tables and must not move what they hold.
        self.graph_rng = random.Random(f"graph-activity/{tenant_id}")
        self.book = book
        self.tenant_id = tenant_id
        self.now = now

    def day(self, workload: Workload, day_start: datetime) -> None:
        count = max(1, workload.sign_ins_per_day + self.schedule.randint(-1, 1))
        for moment in sorted(day_start + timedelta(seconds=self.schedule.randint(0, 86399)) for _ in range(count)):
            if moment >= self.now:
                continue
            if workload.app is None:
                self.managed_identity_session(workload, moment)
            else:
                self.application_session(workload, moment)
        if workload.app is None and self.schedule.random() < 1 / 30:
            self.certificate_rotation(workload, day_start + timedelta(hours=self.schedule.randint(0, 23)))

    def application_session(self, workload: Workload, moment: datetime, ip: str | None = None,
                            credential: object | None = None) -> str:
        """A sign-in and what the token is then used for; returns the token id."""
        credential = credential or workload.credential
        expired = credential is not None and credential.endDateTime is not None and credential.endDateTime <= moment
        if workload.workflow and not expired:
            return self.playbook_run(workload, moment, ip or workload.home_ip, credential)
        token = self.app_sign_in(workload, moment, ip or workload.home_ip, "7000222" if expired else "0", credential)
        if expired:
            return token
        if workload.kind == "pipeline":
            for offset in range(self.rng.randint(1, 2)):
                self.deploy(workload, moment + timedelta(minutes=2 + offset), self.rng.choice(DEPLOY_OPERATIONS),
                            token, ip or workload.home_ip)
        if workload.kind == "automation":
            for _ in range(self.rng.randint(1, 2)):
                user = self.rng.choice(self.factory.users)
                self.directory_change(workload, moment + timedelta(minutes=1), "Update user",
                                      [{"id": user.id, "displayName": user.userPrincipalName, "type": "User"}])
        if workload.vault_id:
            self.application_secret_reads(workload, moment + timedelta(seconds=20), ip or workload.home_ip, credential)
        if workload.resource_app_id == GRAPH_APP_ID:
            self.graph_requests(workload, moment + timedelta(seconds=2), ip or workload.home_ip, token, moment,
                                self._usual_graph_reads(workload))
        return token

    def _usual_graph_reads(self, workload: Workload) -> list[str]:
        """What a Graph workload reads on a run: its own paths for a few users, or a page of users and a few of
        them."""
        users = self.graph_rng.sample(self.factory.users, self.graph_rng.randint(2, 4))
        if workload.graph_reads:
            return [path.format(user=user.id) for user in users for path in workload.graph_reads]
        return ["/users?$select=id,displayName,department&$top=999",
                *(f"/users/{user.id}?$select=id,accountEnabled,department" for user in users)]

    def graph_requests(self, workload: Workload, moment: datetime, ip: str, token: str, issued: datetime,
                       paths: list[str], status: int = 200, step: timedelta = timedelta(milliseconds=400),
                       user_agent: str = "python-requests/2.32.3") -> None:
        """App-only Microsoft Graph requests made with the token of the sign-in at `issued`, one every `step`."""
        roles = " ".join(assignment.permission for assignment in workload.sp.appRoleAssignments)
        for index, path in enumerate(paths):
            at = moment + index * step
            request_id = str(uuid.UUID(int=self.graph_rng.getrandbits(128), version=4))
            self.book.add("graph", at, records.graph_request(
                self.tenant_id, at, sp_id=workload.sp.id, app_id=workload.sp.appId, ip=ip, method="GET", uri=path,
                status=status, token_id=token, token_issued=issued, request_id=request_id, roles=roles,
                size=self.graph_rng.randint(800, 60000) if status == 200 else 220, user_agent=user_agent))

    def application_secret_reads(self, workload: Workload, moment: datetime, ip: str, credential: object | None,
                                 secrets: list[str] | None = None, listing: bool = False) -> None:
        """An application that keeps its secrets in Key Vault gets a Key Vault token and reads them."""
        self.app_sign_in(workload, moment, ip, "0", credential, resource=("Azure Key Vault", KEYVAULT_APP_ID))
        names = ([""] if listing else []) + list(secrets or workload.secrets)
        for offset, secret in enumerate(names):
            self.book.add("keyvault", moment, records.keyvault_read(
                moment + timedelta(seconds=1 + offset), vault_id=workload.vault_id, secret=secret,
                caller_id=workload.sp.id, app_id=workload.sp.appId, ip=ip, request_id=self.factory.guid(),
                operation="SecretGet" if secret else "SecretList"))

    def app_sign_in(self, workload: Workload, moment: datetime, ip: str, result: str, credential: object | None,
                    key_id: str | None = None, resource: tuple[str, str] | None = None) -> str:
        """One sign-in of an application; `resource` (display name, app id) overrides its usual one."""
        token = self.factory.guid()[:22]
        resource_name, resource_app_id = resource or (workload.resource, workload.resource_app_id)
        secret = isinstance(credential, PasswordCredential)
        asn, country = records.network(ip)
        self.book.add("sp", moment, records.sign_in(
            self.tenant_id, moment, sp_id=workload.sp.id, sp_name=workload.name, app_id=workload.sp.appId, ip=ip,
            result=result, resource=resource_name, resource_id=resource_app_id,
            credential_type="clientSecret" if secret or credential is None else "clientAssertion",
            key_id=key_id if key_id is not None else (credential.keyId if credential else ""),
            thumbprint="" if secret or credential is None else credential.customKeyIdentifier or "",
            token_id=token, request_id=self.factory.guid(), asn=asn or 8075, country=country or "US"))
        return token

    def playbook_run(self, workload: Workload, start: datetime, ip: str, credential: object | None,
                     actions: tuple[tuple[str, str, str], ...] | None = None) -> str:
        """A run of the Logic App whose API connection signs in as `workload`: the trigger, then each action
        (name, resource display name, resource app id), whose connector signs in just after the action starts.
        The WorkflowRuntime records name no identity and no IP. Returns the first sign-in's token id."""
        actions = actions or (("Run_query_and_list_results", workload.resource, workload.resource_app_id),)
        run_id = f"08584{self.rng.randrange(10 ** 24):024d}CU{self.rng.randrange(100):02d}"

        def event(moment: datetime, operation: str, status: str, step_start: datetime, **names: str) -> None:
            self.book.add("workflow", moment, records.workflow_event(
                moment, workflow_id=workload.workflow, operation=operation, run_id=run_id, start=step_start,
                status=status, end=moment if status != "Running" else None, **names))

        event(start, "workflowRunStarted", "Running", start)
        event(start + timedelta(milliseconds=90), "workflowTriggerCompleted", "Succeeded", start,
              trigger="Microsoft_Sentinel_incident")
        tokens = []
        action_start = start + timedelta(milliseconds=400)
        for name, resource, resource_app_id in actions:
            tokens.append(self.app_sign_in(workload, action_start + timedelta(milliseconds=350), ip, "0", credential,
                                           resource=(resource, resource_app_id)))
            done = action_start + timedelta(milliseconds=self.rng.randint(900, 2500))
            event(done, "workflowActionCompleted", "Succeeded", action_start, action=name,
                  tracking_id=self.factory.guid())
            action_start = done + timedelta(milliseconds=60)
        event(action_start, "workflowRunCompleted", "Succeeded", start)
        return tokens[0]

    def deploy(self, workload: Workload, moment: datetime, operation: str, token: str, ip: str) -> None:
        provider_and_type = "/".join(operation.split("/")[:2])
        resource = (f"/subscriptions/{self.factory.subscription_id}/resourceGroups/rg-{workload.name}"
                    f"/providers/{provider_and_type}/{workload.name}")
        self.book.add("activity", moment, records.activity(
            self.tenant_id, moment, caller_id=workload.sp.id, app_id=workload.sp.appId, ip=ip, operation=operation,
            resource_id=resource, token_id=token, correlation_id=self.factory.guid()))

    def directory_change(self, workload: Workload, moment: datetime, operation: str, targets: list[dict]) -> None:
        initiated = {"app": {"appId": workload.sp.appId, "displayName": workload.name,
                             "servicePrincipalId": workload.sp.id}}
        self.book.add("audit", moment, records.audit_row(
            self.tenant_id, moment, record_id=f"Directory_{self.factory.guid()}", operation=operation,
            category="UserManagement", initiated_by=initiated, targets=targets))

    def managed_identity_session(self, workload: Workload, moment: datetime, associated: str | None = None,
                                 secrets: list[str] | None = None, vault_id: str | None = None) -> None:
        associated = associated or workload.associated_resource
        vault_id = vault_id or workload.vault_id
        msi = {"msiType": "UserAssigned" if workload.kind == "user-assigned" else "SystemAssigned",
               "associatedResourceId": associated}
        self.book.add("mi", moment, records.sign_in(
            self.tenant_id, moment, sp_id=workload.sp.id, sp_name=workload.name, app_id=workload.sp.appId, ip="",
            result="0", resource=workload.resource, resource_id=workload.resource_app_id,
            credential_type="managedIdentity", token_id=self.factory.guid()[:22], request_id=self.factory.guid(),
            managed_identity=msi))
        if not vault_id:
            return
        for offset, secret in enumerate(secrets or workload.secrets):
            self.book.add("keyvault", moment, records.keyvault_read(
                moment + timedelta(seconds=1 + offset), vault_id=vault_id, secret=secret,
                caller_id=workload.sp.id, app_id=workload.sp.appId, ip=f"10.1.{self.rng.randint(0, 9)}.4",
                request_id=self.factory.guid()))

    def certificate_rotation(self, workload: Workload, moment: datetime) -> None:
        """Managed identities renew their own certificate: routine, never a finding."""
        if moment >= self.now:
            return
        key_id = self.factory.guid()
        target = {"id": workload.sp.id, "displayName": workload.name, "type": "ServicePrincipal",
                  "modifiedProperties": [{"displayName": "KeyDescription", "oldValue": "[]", "newValue": json.dumps(
                      [records.key_description(key_id, "AsymmetricX509Cert", "Verify", "MSI")])}]}
        self.book.add("audit", moment, records.audit_row(
            self.tenant_id, moment, record_id=f"Directory_{self.factory.guid()}",
            operation="Add service principal credentials", category="ApplicationManagement",
            initiated_by={"app": {"appId": None, "displayName": "Managed Service Identity",
                                  "servicePrincipalId": self.factory.guid()}},
            targets=[target]))
