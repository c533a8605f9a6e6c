// Key Vault in RBAC mode for the app's secrets (today: the Teams Workflows webhook URL, which is a
// bearer capability: whoever has it can post to the channel). The app reads it through a Key
// Vault reference resolved with its user-assigned identity; the identity may read secrets of
// this vault and nothing else.

@description('Key Vault name (3-24 characters).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags.')
param tags object = {}

@description('Teams Workflows webhook URL. Empty: no secret is created and Teams notification stays off.')
@secure()
param teamsWebhookUrl string = ''

@description('Name of the secret that holds the webhook URL.')
param teamsWebhookSecretName string = 'teams-webhook-url'

@description('Principal (object) id of the Function App\'s managed identity.')
param functionPrincipalId string

@description('Purge protection: a deleted vault stays recoverable (and its name taken) for softDeleteRetentionInDays. Azure refuses `false` for it, so off means leaving it out.')
param purgeProtection bool = true

var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  //checkov:skip=CKV_AZURE_109:No VNet in this deployment: the Flex Consumption app resolves its Key Vault reference over the public endpoint, which a default-deny firewall would block. Access is RBAC-only (one Secrets User assignment).
  //checkov:skip=CKV_AZURE_189:Same reason as CKV_AZURE_109; disabling public access needs VNet integration and a private endpoint, which this template does not deploy.
  //checkov:skip=CKV_AZURE_110:Purge protection is on unless the deployer sets keyVaultPurgeProtection=false (for a throwaway environment); checkov cannot evaluate the parameter, tests/test_infra_security.py asserts its default is true.
  //checkov:skip=CKV_AZURE_42:Recoverable: soft delete is always on (90 days) and purge protection is on by default; see the CKV_AZURE_110 skip.
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: purgeProtection ? true : null
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

module teamsWebhookSecret 'keyvault-secret.bicep' = if (!empty(teamsWebhookUrl)) {
  name: 'secret-${teamsWebhookSecretName}'
  params: {
    vaultName: vault.name
    name: teamsWebhookSecretName
    value: teamsWebhookUrl
    contentType: 'text/uri-list'
  }
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, functionPrincipalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output id string = vault.id
output name string = vault.name
// Versionless URI: the app picks up a rotated secret without a redeployment.
output teamsWebhookSecretUri string = '${vault.properties.vaultUri}secrets/${teamsWebhookSecretName}'
