// One Key Vault secret. A module of its own so the parent can create it conditionally while the
// resource itself stays unconditional (and fully visible to the scanners in `make test`).

@description('Name of the existing vault.')
param vaultName string

@description('Secret name.')
param name string

@description('Secret value.')
@secure()
param value string

@description('Content type of the value.')
param contentType string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  //checkov:skip=CKV_AZURE_41:The Teams Workflows webhook URL has no lifetime of its own; an expiry date would silently stop notifications. It is rotated by replacing the workflow and re-running the deployment.
  parent: vault
  name: name
  properties: {
    value: value
    contentType: contentType
  }
}

output name string = secret.name
