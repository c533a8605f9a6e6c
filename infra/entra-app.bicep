// The Entra app registration that signs people in to the findings API (App Service
// authentication on the Function app), with the app role a triage needs. A separate deployment,
// run once per tenant by someone who may register applications (Application Developer or
// Cloud Application Administrator); pass its `clientId` output to the main deployment as
// authClientId (azd: WIAUDIT_AUTH_CLIENT_ID). Then assign `Findings.Triage` to the analysts in
// Entra (Enterprise applications -> this app -> Users and groups). See docs/deploy.md.
//
//   az deployment group create -g <AZURE_RESOURCE_GROUP> --template-file infra/entra-app.bicep
extension microsoftGraphV1

@description('Unique name of the app registration in the tenant (its client-provided key: redeploying updates it).')
param uniqueName string = 'workload-identity-auditor-api'

@description('Display name of the app registration.')
param displayName string = 'Workload Identity Auditor API'

@description('Host name of the Function app (func-wiaudit-<token>.azurewebsites.net, azd output SERVICE_API_URI without https://) for browser sign-in to the web page at /api/ui: adds its App Service authentication callback and ID token issuance. Empty: API sign-in only.')
param webPageHost string = ''

// Well-known first-party client: the Azure CLI, pre-authorised so analysts can get a token with
// `az account get-access-token --scope <clientId>/user_impersonation` without a consent prompt.
var azureCliAppId = '04b07795-8ddb-461a-bbee-02f9e1bf7b46'
var triageRoleId = guid(uniqueName, 'Findings.Triage')
var userImpersonationId = guid(uniqueName, 'user_impersonation')

resource app 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: uniqueName
  displayName: displayName
  signInAudience: 'AzureADMyOrg'
  // A browser signs in through App Service authentication, which gets an ID token at its callback.
  web: {
    redirectUris: empty(webPageHost) ? [] : ['https://${webPageHost}/.auth/login/aad/callback']
    implicitGrantSettings: {
      enableIdTokenIssuance: !empty(webPageHost)
    }
  }
  api: {
    requestedAccessTokenVersion: 2
    oauth2PermissionScopes: [
      {
        id: userImpersonationId
        value: 'user_impersonation'
        type: 'User'
        isEnabled: true
        adminConsentDisplayName: 'Use the findings API as the signed-in user'
        adminConsentDescription: 'Read findings and triage them as the signed-in user.'
        userConsentDisplayName: 'Use the findings API as you'
        userConsentDescription: 'Read findings and triage them as you.'
      }
    ]
    preAuthorizedApplications: [
      {
        appId: azureCliAppId
        delegatedPermissionIds: [
          userImpersonationId
        ]
      }
    ]
  }
  appRoles: [
    {
      id: triageRoleId
      value: 'Findings.Triage'
      displayName: 'Triage findings'
      description: 'Acknowledge, resolve or mark findings as false positives; the triage records this person.'
      allowedMemberTypes: [
        'User'
      ]
      isEnabled: true
    }
  ]
}

resource servicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: app.appId
}

output clientId string = app.appId
output servicePrincipalId string = servicePrincipal.id
output triageRoleId string = triageRoleId
