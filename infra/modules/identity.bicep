// The Function App's user-assigned managed identity. Every permission of the app is granted to
// this principal in the module that owns the resource it applies to (storage.bicep,
// monitoring.bicep, keyvault.bicep, workspace-access.bicep, graph-permissions.bicep).

@description('Name of the user-assigned managed identity.')
param name string

@description('Azure region.')
param location string

@description('Tags for the identity.')
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
