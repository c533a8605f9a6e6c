// Read access to the EXISTING Log Analytics workspace that holds the logs to audit. Deployed at
// the scope of that workspace's resource group (which may be in another resource group or
// subscription than the app), so the role assignment sits on the workspace itself.

@description('Name of the existing Log Analytics workspace (in this module\'s resource group).')
param workspaceName string

@description('Principal (object) id of the Function App\'s managed identity.')
param functionPrincipalId string

var logAnalyticsReader = '73c42c96-874c-492b-b04d-ab87d138a893'

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

resource reader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, functionPrincipalId, logAnalyticsReader)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', logAnalyticsReader)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The workspace (customer) id the query API takes: LOG_ANALYTICS_WORKSPACE_ID.
output customerId string = workspace.properties.customerId
output id string = workspace.id
