// Workload Identity Auditor: everything `azd up` (or `az deployment sub create`) deploys.
//
// Subscription scope, as azd's Functions templates use: the template creates the resource group
// and deploys one module per concern into it, plus a read-only role assignment on the EXISTING
// Log Analytics workspace (possibly in another resource group or subscription).
//
// Admin-run pieces are separate deployments, never part of this one: the Microsoft Graph app
// roles (infra/scripts/grant-graph-permissions.sh, needs AppRoleAssignment.ReadWrite.All; run
// after this deployment, once the identity has replicated), the Entra app registration for
// sign-in (entra-app.bicep) and Entra diagnostic settings (entra-diagnostics.bicep, tenant
// scope). See docs/deploy.md.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; seeds resource names and the azd-env-name tag.')
param environmentName string

// The regions that offer the Flex Consumption plan, as Microsoft's Flex Consumption quickstart
// (Azure-Samples/functions-quickstart-python-http-azd) lists them; the live list for a
// subscription: `az functionapp list-flexconsumption-locations -o table`.
@minLength(1)
@description('Region of every resource (must offer the Functions Flex Consumption plan).')
@allowed([
  'australiaeast'
  'australiasoutheast'
  'brazilsouth'
  'canadacentral'
  'centralindia'
  'centralus'
  'eastasia'
  'eastus'
  'eastus2'
  'francecentral'
  'germanywestcentral'
  'italynorth'
  'japaneast'
  'koreacentral'
  'northcentralus'
  'northeurope'
  'norwayeast'
  'southafricanorth'
  'southcentralus'
  'southeastasia'
  'southindia'
  'spaincentral'
  'swedencentral'
  'uaenorth'
  'uksouth'
  'ukwest'
  'westcentralus'
  'westeurope'
  'westus'
  'westus2'
  'westus3'
])
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Resource group to create; empty: rg-<environmentName>.')
param resourceGroupName string = ''

@description('Resource id of the EXISTING Log Analytics workspace with the Entra, activity, Key Vault and Graph activity logs to audit: /subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.OperationalInsights/workspaces/<name>.')
param logAnalyticsWorkspaceResourceId string

@description('Object id of the person or group running azd (AZURE_PRINCIPAL_ID). Used only when grantFindingsReadToPrincipal is true.')
param principalId string = ''

@description('Principal type of principalId.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param principalType string = 'User'

@description('Key Vault name (3-24 letters, digits, hyphens); empty: kv-wia-<token>. Set a new one to redeploy after `azd down` while the old vault is soft-deleted (purge protection keeps its name for the retention period).')
@maxLength(24)
param keyVaultName string = ''

@description('Purge protection on the Key Vault: a deleted vault (and its name) stays recoverable for the retention period. Cannot be turned off again once on; turn it off only for throwaway environments.')
param keyVaultPurgeProtection bool = true

@description('Client id of the Entra app registration that signs people in to the findings API (entra-app.bicep). Empty: no App Service authentication; triage names the analyst in `by`.')
param authClientId string = ''

@description('Give principalId Storage Table Data Reader on the findings account (read findings from a workstation). Off by default.')
param grantFindingsReadToPrincipal bool = false

@description('Teams Workflows webhook URL, stored as a Key Vault secret. Empty: Teams notification off.')
@secure()
param teamsWebhookUrl string = ''

@description('Mailbox (UPN or object id) the digest email is sent from. Empty: email off and Mail.Send is not granted.')
param mailSender string = ''

@description('Comma-separated recipients of the digest email.')
param mailTo string = ''

@description('Absolute base URL of the HTTP API for the digest\'s links to findings (a custom domain or front door); empty: the Function App\'s own https host name.')
param publicBaseUrl string = ''

@description('OWNER_NOTICES: email each application\'s owners about its expiring, expired and unused credentials, from mailSender (its Exchange RBAC scope already covers it).')
@allowed(['true', 'false'])
param ownerNotices string = 'false'

@description('OWNER_NOTICE_DAYS: days before a credential\'s end at which its owners are told, comma-separated.')
param ownerNoticeDays string = '30,14,7,1'

@description('OWNER_NOTICE_DOMAINS: mail domains owner notices may go to, comma-separated; empty: any.')
param ownerNoticeDomains string = ''

@description('AUDIT_SCHEDULE: NCRONTAB schedule of the audit timer (UTC).')
param auditSchedule string = '0 0 6 * * *'

@description('INGESTION_DELAY_MINUTES: how far behind now an audit window must end.')
@minValue(0)
param ingestionDelayMinutes int = 15

@description('MAX_LOOKBACK_DAYS: how far back a catch-up run goes at most.')
@minValue(1)
param maxLookbackDays int = 7

@description('DETECTION_PARAMETERS: JSON overrides of detection parameters, {"<rule file name>": {"<parameter>": value}}.')
param detectionParameters string = '{}'

@description('DISABLED_DETECTIONS: detections and posture checks the audit does not run, by id, file name or exact name, comma-separated (e.g. the two risk-table rules in a tenant without Workload Identities Premium).')
param disabledDetections string = ''

@description('LOG_ANALYTICS_TIMEOUT_SECONDS: server timeout of one Log Analytics query.')
@minValue(1)
@maxValue(600)
param logAnalyticsTimeoutSeconds int = 600

@description('LOG_ANALYTICS_ENDPOINT for sovereign clouds; empty: the public cloud default of the app.')
param logAnalyticsEndpoint string = ''

@description('KUSTO_CLUSTER_URL: query URI of an Azure Data Explorer cluster or Fabric Eventhouse whose database holds the logs (long retention); empty: the audit reads Log Analytics.')
param kustoClusterUrl string = ''

@description('KUSTO_DATABASE: the database of that cluster that holds the logs.')
param kustoDatabase string = ''

@description('Resource id of that Azure Data Explorer database (/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Kusto/clusters/<cluster>/databases/<db>): the app gets the Viewer role on it, nothing else. Empty (default): no role assignment (a Fabric Eventhouse is granted in Fabric).')
param kustoDatabaseResourceId string = ''

@description('KUSTO_TABLES: JSON map of Log Analytics table names to the names of the tables in that database, e.g. {"AADServicePrincipalSignInLogs": "SpSignIns"}.')
param kustoTables string = '{}'

@description('KUSTO_TIMEOUT_SECONDS: server timeout of one query on that cluster.')
@minValue(1)
@maxValue(3600)
param kustoTimeoutSeconds int = 600

@description('GRAPH_ENDPOINT for sovereign clouds; empty: the public cloud default of the app.')
param graphEndpoint string = ''

@description('AZURE_RBAC_SCOPES: comma-separated /subscriptions/<id> and /providers/Microsoft.Management/managementGroups/<name> whose Azure role assignments the posture checks read through Resource Graph; empty: not read.')
param azureRbacScopes string = ''

@description('AZURE_RESOURCE_MANAGER_ENDPOINT for sovereign clouds; empty: the public cloud default of the app.')
param azureResourceManagerEndpoint string = ''

@description('Create a custom role with only Microsoft.Authorization/roleAssignments/read and roleDefinitions/read in this subscription and assign it to the app, for AZURE_RBAC_SCOPES. Off by default; for other subscriptions or management groups assign it (or Reader) there.')
param grantAzureRbacRead bool = false

@description('Send findings and their changes to the custom table WorkloadIdentityFindings_CL in the audited workspace (Sentinel): creates the table, a data collection rule and Monitoring Metrics Publisher on that rule for the app. Off: FINDINGS_INGESTION_ENDPOINT stays empty and nothing is sent.')
param findingsToWorkspace bool = true

@description('Extra tags for every resource.')
param tags object = {}

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var allTags = union(tags, { 'azd-env-name': environmentName })
var functionAppName = 'func-wiaudit-${resourceToken}'
var deploymentContainerName = 'app-package-${take(resourceToken, 7)}'

// /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.OperationalInsights/workspaces/<name>
var workspaceIdParts = split(logAnalyticsWorkspaceResourceId, '/')
var workspaceSubscriptionId = workspaceIdParts[2]
var workspaceResourceGroupName = workspaceIdParts[4]
var workspaceName = last(workspaceIdParts)

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : 'rg-${environmentName}'
  location: location
  tags: allTags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-wiaudit-${resourceToken}'
    location: location
    tags: allTags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'stwiaudit${take(resourceToken, 13)}'
    location: location
    tags: allTags
    deploymentContainerName: deploymentContainerName
    functionPrincipalId: identity.outputs.principalId
    readerPrincipalId: grantFindingsReadToPrincipal ? principalId : ''
    readerPrincipalType: principalType
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    workspaceName: 'log-wiaudit-${resourceToken}'
    appInsightsName: 'appi-wiaudit-${resourceToken}'
    location: location
    tags: allTags
    functionPrincipalId: identity.outputs.principalId
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: !empty(keyVaultName) ? keyVaultName : 'kv-wia-${take(resourceToken, 13)}'
    location: location
    tags: allTags
    purgeProtection: keyVaultPurgeProtection
    teamsWebhookUrl: teamsWebhookUrl
    functionPrincipalId: identity.outputs.principalId
  }
}

// Log Analytics Reader on the audited workspace, deployed where the workspace lives.
module workspaceAccess 'modules/workspace-access.bicep' = {
  name: 'workspace-access-${resourceToken}'
  scope: resourceGroup(workspaceSubscriptionId, workspaceResourceGroupName)
  params: {
    workspaceName: workspaceName
    functionPrincipalId: identity.outputs.principalId
  }
}

// /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Kusto/clusters/<cluster>/databases/<db>
var kustoIdParts = split(kustoDatabaseResourceId, '/')

// Viewer on the one Azure Data Explorer database the logs are read from, when one is named.
module kustoViewer 'modules/kusto-viewer.bicep' = if (!empty(kustoDatabaseResourceId)) {
  name: 'kusto-viewer-${resourceToken}'
  scope: resourceGroup(kustoIdParts[2], kustoIdParts[4])
  params: {
    clusterName: kustoIdParts[8]
    databaseName: kustoIdParts[10]
    functionClientId: identity.outputs.clientId
  }
}

// The findings table, its data collection rule and the app's right to send to that rule only.
module findingsTable 'modules/findings-table.bicep' = if (findingsToWorkspace) {
  name: 'findings-table-${resourceToken}'
  scope: resourceGroup(workspaceSubscriptionId, workspaceResourceGroupName)
  params: {
    workspaceName: workspaceName
    ruleName: 'dcr-wiaudit-${resourceToken}'
    tags: allTags
    functionPrincipalId: identity.outputs.principalId
  }
}

// The workbook over the findings table and the sign-in logs, in this resource group, reading the audited
// workspace (it lists among that workspace's Sentinel workbooks). Only with the findings table it reads.
module workbook 'modules/workbook.bicep' = if (findingsToWorkspace) {
  name: 'workbook-${resourceToken}'
  scope: rg
  params: {
    location: location
    workspaceResourceId: logAnalyticsWorkspaceResourceId
    tags: allTags
  }
}

module azureRbacRead 'modules/azure-rbac-read.bicep' = if (grantAzureRbacRead) {
  name: 'azure-rbac-read'
  params: {
    functionPrincipalId: identity.outputs.principalId
  }
}

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app'
  scope: rg
  params: {
    name: functionAppName
    planName: 'plan-wiaudit-${resourceToken}'
    location: location
    tags: allTags
    serviceName: 'api'
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageBlobEndpoint: storage.outputs.blobEndpoint
    storageQueueEndpoint: storage.outputs.queueEndpoint
    storageTableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerName: storage.outputs.deploymentContainerName
    appInsightsConnectionString: monitoring.outputs.connectionString
    auditSchedule: auditSchedule
    logAnalyticsWorkspaceId: workspaceAccess.outputs.customerId
    logAnalyticsEndpoint: logAnalyticsEndpoint
    logAnalyticsTimeoutSeconds: logAnalyticsTimeoutSeconds
    graphEndpoint: graphEndpoint
    kustoClusterUrl: kustoClusterUrl
    kustoDatabase: kustoDatabase
    kustoTables: kustoTables
    kustoTimeoutSeconds: kustoTimeoutSeconds
    azureRbacScopes: azureRbacScopes
    azureResourceManagerEndpoint: azureResourceManagerEndpoint
    ingestionDelayMinutes: ingestionDelayMinutes
    maxLookbackDays: maxLookbackDays
    detectionParameters: detectionParameters
    disabledDetections: disabledDetections
    teamsWebhookSecretUri: empty(teamsWebhookUrl) ? '' : keyVault.outputs.teamsWebhookSecretUri
    mailSender: mailSender
    mailTo: mailTo
    publicBaseUrl: publicBaseUrl
    authClientId: authClientId
    ownerNotices: ownerNotices
    ownerNoticeDays: ownerNoticeDays
    ownerNoticeDomains: ownerNoticeDomains
    findingsIngestionEndpoint: findingsToWorkspace ? findingsTable.outputs.ingestionEndpoint : ''
    findingsRuleImmutableId: findingsToWorkspace ? findingsTable.outputs.ruleImmutableId : ''
  }
}

// azd reads these into the environment (.azure/<env>/.env).
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output SERVICE_API_NAME string = functionApp.outputs.name
output SERVICE_API_URI string = functionApp.outputs.uri
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output FINDINGS_TABLE_ENDPOINT string = storage.outputs.tableEndpoint
output LOG_ANALYTICS_WORKSPACE_ID string = workspaceAccess.outputs.customerId
output FINDINGS_INGESTION_ENDPOINT string = findingsToWorkspace ? findingsTable.outputs.ingestionEndpoint : ''
output FINDINGS_DCR_IMMUTABLE_ID string = findingsToWorkspace ? findingsTable.outputs.ruleImmutableId : ''
