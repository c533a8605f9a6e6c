// Entra ID (tenant) diagnostic settings: route the sign-in, audit and Graph activity logs the
// detections read to the audited Log Analytics workspace.
//
// Tenant scope, admin-run, separate from main.bicep: the deployer must be a Global
// Administrator or Security Administrator (microsoft.aadiam/diagnosticSettings/write), and
// holds Contributor-level rights on the workspace to link it. Ingestion is billed per GB on the
// workspace; estimate the volume first (docs/deploy.md, "Cost").
//
//   az deployment tenant create --location <region> \
//     --template-file infra/entra-diagnostics.bicep \
//     --parameters workspaceResourceId=<workspace resource id>
targetScope = 'tenant'

@description('Resource id of the Log Analytics workspace that receives the logs.')
param workspaceResourceId string

@description('Name of the diagnostic setting.')
param settingName string = 'wiaudit-to-log-analytics'

@description('Entra log categories to route. The detections need the service principal and managed identity sign-ins, the audit log and the Graph activity log, and Entra ID Protection verdicts on service principals (risk events and risky service principals, with Workload Identities Premium); user sign-ins give context.')
param categories array = [
  'ServicePrincipalSignInLogs'
  'ManagedIdentitySignInLogs'
  'NonInteractiveUserSignInLogs'
  'SignInLogs'
  'AuditLogs'
  'MicrosoftGraphActivityLogs'
  'ServicePrincipalRiskEvents'
  'RiskyServicePrincipals'
]

resource entraDiagnostics 'microsoft.aadiam/diagnosticSettings@2017-04-01' = {
  name: settingName
  properties: {
    workspaceId: workspaceResourceId
    logs: [
      for category in categories: {
        category: category
        enabled: true
      }
    ]
  }
}

output id string = entraDiagnostics.id
output categories array = categories
