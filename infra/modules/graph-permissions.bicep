// Microsoft Graph application permissions (app roles) for the Function App's managed identity.
// Admin-run: the deploying principal needs AppRoleAssignment.ReadWrite.All (in practice a
// Privileged Role Administrator or Global Administrator), which an app developer should not
// hold. Kept in its own module because it uses the Microsoft Graph Bicep extension, which the
// scanners in `make test` cannot parse; see tests/test_infra_parse.py for its textual check.
//
//   Application.Read.All  bulk read of applications, service principals (incl. managed
//                         identities), their credentials, owners and app role assignments:
//                         the inventory and enrich steps.
//   RoleManagement.Read.Directory
//                         read directory roles and their members, to know which workload
//                         identities hold privileged roles (Application.Read.All does not
//                         cover /directoryRoles).
//   Mail.Send             only when email is enabled AND the deployer opts in. Granted here it
//                         is tenant-wide (send as any mailbox), and Exchange RBAC for
//                         Applications adds to Entra grants rather than narrowing them. The
//                         least-privilege route grants "Application Mail.Send" in Exchange,
//                         scoped to the sender mailbox, instead (docs/deploy.md).
extension microsoftGraphV1

@description('Principal (object) id of the managed identity\'s service principal.')
param principalId string

@description('Also grant Mail.Send (digest email through Graph sendMail).')
param grantMailSend bool = false

// Well-known ids, the same in every tenant.
var microsoftGraphAppId = '00000003-0000-0000-c000-000000000000'
var applicationReadAllRoleId = '9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30'
var roleManagementReadDirectoryRoleId = '483bed4a-2ad3-4361-a73b-c83ccdbdc53c'
var mailSendRoleId = 'b633e1c5-b582-4048-a93e-9f11b44c7e96'

resource microsoftGraph 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: microsoftGraphAppId
}

resource applicationReadAll 'Microsoft.Graph/appRoleAssignedTo@v1.0' = {
  resourceId: microsoftGraph.id
  appRoleId: applicationReadAllRoleId
  principalId: principalId
}

resource roleManagementReadDirectory 'Microsoft.Graph/appRoleAssignedTo@v1.0' = {
  resourceId: microsoftGraph.id
  appRoleId: roleManagementReadDirectoryRoleId
  principalId: principalId
}

resource mailSend 'Microsoft.Graph/appRoleAssignedTo@v1.0' = if (grantMailSend) {
  resourceId: microsoftGraph.id
  appRoleId: mailSendRoleId
  principalId: principalId
}

var readRoleIds = [applicationReadAllRoleId, roleManagementReadDirectoryRoleId]
output grantedAppRoleIds array = grantMailSend ? concat(readRoleIds, [mailSendRoleId]) : readRoleIds
