// Least privilege for AZURE_RBAC_SCOPES: a custom role that can read role assignments and role
// definitions and nothing else, in this subscription, assigned to the Function App's identity.
// Azure Resource Graph's authorizationresources answers with what the caller may read, so this is
// all the Azure-role posture checks need (Reader works too, and reads far more).
targetScope = 'subscription'

@description('Principal (object) id of the Function App\'s managed identity.')
param functionPrincipalId string

resource rbacReader 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, 'workload-identity-auditor-rbac-reader')
  properties: {
    roleName: 'Workload Identity Auditor RBAC Reader (${subscription().subscriptionId})'
    description: 'Reads Azure role assignments and role definitions, nothing else.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.Authorization/roleAssignments/read'
          'Microsoft.Authorization/roleDefinitions/read'
        ]
        notActions: []
      }
    ]
    assignableScopes: [
      subscription().id
    ]
  }
}

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, functionPrincipalId, rbacReader.id)
  properties: {
    roleDefinitionId: rbacReader.id
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}
