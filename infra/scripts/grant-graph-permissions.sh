#!/usr/bin/env bash
# Grants the Function's managed identity its Microsoft Graph app roles: a separate deployment of
# infra/modules/graph-permissions.bicep, run by an admin (AppRoleAssignment.ReadWrite.All, in practice
# a Privileged Role Administrator) after the main deployment.
#
# Idempotent: it first lists the identity's app role assignments and deploys nothing when every
# role is already granted. A managed identity created a moment ago may not have replicated to
# Microsoft Graph yet (the grant then fails with "does not exist" / Request_ResourceNotFound): the
# script waits for the service principal to be readable, then retries the deployment with a
# growing pause (attempt × WIAUDIT_GRAPH_GRANT_PAUSE_SECONDS, default 40), WIAUDIT_GRAPH_GRANT_ATTEMPTS
# times (default 6: about 10 minutes in all).
#
# Usage (values from azd): eval "$(azd env get-values)"; infra/scripts/grant-graph-permissions.sh
#   AZURE_RESOURCE_GROUP, AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID  required
#   WIAUDIT_GRANT_MAIL_SEND_IN_ENTRA=true                       also Mail.Send (tenant-wide; see docs/deploy.md)
set -euo pipefail

resource_group=${AZURE_RESOURCE_GROUP:?set AZURE_RESOURCE_GROUP (eval "\$(azd env get-values)")}
principal_id=${AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID:?set AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID}
grant_mail_send=${WIAUDIT_GRANT_MAIL_SEND_IN_ENTRA:-false}
attempts=${WIAUDIT_GRAPH_GRANT_ATTEMPTS:-6}
pause_unit=${WIAUDIT_GRAPH_GRANT_PAUSE_SECONDS:-40}
template="$(dirname "$0")/../modules/graph-permissions.bicep"

graph="$(az cloud show --query endpoints.microsoftGraphResourceId -o tsv)"
graph="${graph%/}/v1.0"
wanted=(9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30 483bed4a-2ad3-4361-a73b-c83ccdbdc53c)  # Application.Read.All, RoleManagement.Read.Directory
[[ "$grant_mail_send" == true ]] && wanted+=(b633e1c5-b582-4048-a93e-9f11b44c7e96)    # Mail.Send

missing_roles() {
  local granted
  granted="$(az rest --method get --url "$graph/servicePrincipals/$principal_id/appRoleAssignments" \
    --query 'value[].appRoleId' -o tsv)" || return 1
  for role in "${wanted[@]}"; do grep -qx "$role" <<<"$granted" || echo "$role"; done
}

for attempt in $(seq 1 "$attempts"); do
  if missing="$(missing_roles 2>/dev/null)"; then
    if [[ -z "$missing" ]]; then
      echo "every Microsoft Graph app role is granted to $principal_id: nothing to do"
      exit 0
    fi
    if output="$(az deployment group create --name wiaudit-graph-permissions -g "$resource_group" \
        --template-file "$template" \
        --parameters principalId="$principal_id" grantMailSend="$grant_mail_send" -o none 2>&1)"; then
      echo "granted the Microsoft Graph app roles to $principal_id"
      exit 0
    fi
    grep -qiE 'does not exist|Request_ResourceNotFound|not found|PrincipalNotFound' <<<"$output" || {
      echo "$output" >&2
      exit 1
    }
  fi
  pause=$((attempt * pause_unit))
  echo "attempt $attempt of $attempts: the identity has not replicated to Microsoft Graph yet; retrying in ${pause} s" >&2
  sleep "$pause"
done
echo "gave up after $attempts attempts: check that $principal_id exists (Entra admin center -> Enterprise applications)" >&2
exit 1
