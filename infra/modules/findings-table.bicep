// Findings into the audited (Sentinel) workspace: the custom table WorkloadIdentityFindings_CL,
// a data collection rule (kind Direct: the Logs Ingestion API endpoint is the rule's own, no
// data collection endpoint) whose stream has the table's columns, and Monitoring Metrics
// Publisher for the Function's identity on that rule only. Deployed at the scope of the
// workspace's resource group, like workspace-access.bicep.
//
// The columns are those of shared/schemas/WorkloadIdentityFindings_CL.json, the file the code and
// the Kusto validator read (tests/test_infra_findings_table.py keeps them equal). They are written
// out rather than loaded with loadJsonContent and a lambda because checkov's Bicep parser cannot
// read lambdas, and a template it cannot parse is not scanned.

@description('Name of the existing Log Analytics workspace (in this module\'s resource group).')
param workspaceName string

@description('Name of the data collection rule.')
param ruleName string

@description('Tags.')
param tags object = {}

@description('Principal (object) id of the Function App\'s managed identity.')
param functionPrincipalId string

@description('Retention of the findings table in days; -1: the workspace default.')
param retentionInDays int = -1

var tableName = 'WorkloadIdentityFindings_CL'
var streamName = 'Custom-${tableName}'
// Without TenantId and Type: Log Analytics adds those to every table itself.
var columns = [
  {
    name: 'TimeGenerated'
    type: 'datetime'
  }
  {
    name: 'FindingId'
    type: 'string'
  }
  {
    name: 'DetectionId'
    type: 'string'
  }
  {
    name: 'DetectionName'
    type: 'string'
  }
  {
    name: 'Severity'
    type: 'string'
  }
  {
    name: 'Status'
    type: 'string'
  }
  {
    name: 'PrincipalId'
    type: 'string'
  }
  {
    name: 'PrincipalName'
    type: 'string'
  }
  {
    name: 'WindowStart'
    type: 'datetime'
  }
  {
    name: 'WindowEnd'
    type: 'datetime'
  }
  {
    name: 'FirstSeen'
    type: 'datetime'
  }
  {
    name: 'LastSeen'
    type: 'datetime'
  }
  {
    name: 'Summary'
    type: 'string'
  }
  {
    name: 'Entities'
    type: 'dynamic'
  }
  {
    name: 'Evidence'
    type: 'dynamic'
  }
  {
    name: 'Change'
    type: 'string'
  }
  {
    name: 'ChangedBy'
    type: 'string'
  }
  {
    name: 'Comment'
    type: 'string'
  }
  {
    name: 'RunId'
    type: 'string'
  }
  {
    name: 'ChangeId'
    type: 'string'
  }
]
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

resource table 'Microsoft.OperationalInsights/workspaces/tables@2023-09-01' = {
  parent: workspace
  name: tableName
  properties: {
    plan: 'Analytics'
    retentionInDays: retentionInDays
    schema: {
      name: tableName
      columns: columns
    }
  }
}

resource rule 'Microsoft.Insights/dataCollectionRules@2023-03-11' = {
  name: ruleName
  location: workspace.location
  tags: tags
  kind: 'Direct'
  properties: {
    description: 'Workload Identity Auditor findings and their changes, sent by the audit Function.'
    streamDeclarations: {
      '${streamName}': {
        columns: columns
      }
    }
    destinations: {
      logAnalytics: [
        {
          name: 'findingsWorkspace'
          workspaceResourceId: workspace.id
        }
      ]
    }
    dataFlows: [
      {
        streams: [
          streamName
        ]
        destinations: [
          'findingsWorkspace'
        ]
        transformKql: 'source'
        outputStream: streamName
      }
    ]
  }
  dependsOn: [
    table
  ]
}

resource publisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(rule.id, functionPrincipalId, monitoringMetricsPublisher)
  scope: rule
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// FINDINGS_INGESTION_ENDPOINT, FINDINGS_DCR_IMMUTABLE_ID and the stream the client posts to.
output ingestionEndpoint string = rule.properties.endpoints.logsIngestion
output ruleImmutableId string = rule.properties.immutableId
output streamName string = streamName
output tableName string = tableName
