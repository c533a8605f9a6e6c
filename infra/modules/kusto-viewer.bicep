// Optional: Viewer on ONE Azure Data Explorer database for the Function's identity, when the audit reads its
// logs there (KUSTO_CLUSTER_URL). Viewer reads the database's tables and nothing else: no ingestion, no schema
// changes, no other database, nothing on the cluster. Deployed at the scope of the cluster's resource group.
// (A Fabric Eventhouse is not an Azure resource: grant Viewer on its KQL database in Fabric instead.)

@description('Name of the existing Azure Data Explorer cluster (in this module\'s resource group).')
param clusterName string

@description('Name of the database that holds the logs.')
param databaseName string

@description('Client (application) id of the Function App\'s managed identity.')
param functionClientId string

resource database 'Microsoft.Kusto/clusters/databases@2024-04-13' existing = {
  name: '${clusterName}/${databaseName}'
}

resource viewer 'Microsoft.Kusto/clusters/databases/principalAssignments@2024-04-13' = {
  parent: database
  name: guid(database.id, functionClientId, 'Viewer')
  properties: {
    principalId: functionClientId
    principalType: 'App'
    role: 'Viewer'
    tenantId: tenant().tenantId
  }
}
