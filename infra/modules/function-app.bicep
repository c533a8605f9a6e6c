// The Function App on the Flex Consumption plan (FC1), Python 3.11, running as its
// user-assigned managed identity. No credential appears in its configuration: host storage,
// the deployment package, Application Insights, Key Vault, Log Analytics, Table Storage and
// Microsoft Graph are all reached with that identity.
//
// The app settings below are the contract with shared/settings.py: every setting the registry
// marks `azure` is set here under the exact name the code reads, secrets only as Key Vault
// references. tests/test_infra_settings.py keeps both sides in step.

@description('Function App name.')
param name string

@description('Flex Consumption plan name.')
param planName string

@description('Azure region.')
param location string

@description('Tags for the plan and the app.')
param tags object = {}

@description('azd service name (azure.yaml) this app hosts.')
param serviceName string = 'api'

@description('Resource id of the user-assigned managed identity.')
param identityId string

@description('Client id of the user-assigned managed identity.')
param identityClientId string

@description('Blob endpoint of that account, ending in "/".')
param storageBlobEndpoint string

@description('Queue endpoint of that account (the Functions host wants it beside the blob endpoint).')
param storageQueueEndpoint string

@description('Table endpoint of that account: FINDINGS_TABLE_ENDPOINT.')
param storageTableEndpoint string

@description('Container that holds the deployment package.')
param deploymentContainerName string

@description('Application Insights connection string (no credential: local auth is disabled).')
param appInsightsConnectionString string

@description('Maximum number of instances (Flex Consumption: 40-1000).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory per instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

// --- values of the product's own settings (names: shared/settings.py) ---

@description('AUDIT_SCHEDULE: NCRONTAB schedule of the audit timer.')
param auditSchedule string

@description('LOG_ANALYTICS_WORKSPACE_ID: workspace (customer) id of the audited workspace.')
param logAnalyticsWorkspaceId string

@description('LOG_ANALYTICS_ENDPOINT: query endpoint; empty uses the public cloud default of the code.')
param logAnalyticsEndpoint string = ''

@description('LOG_ANALYTICS_TIMEOUT_SECONDS.')
param logAnalyticsTimeoutSeconds int

@description('KUSTO_CLUSTER_URL: query URI of an Azure Data Explorer cluster or Fabric Eventhouse holding the logs; empty: Log Analytics.')
param kustoClusterUrl string = ''

@description('KUSTO_DATABASE: database of that cluster.')
param kustoDatabase string = ''

@description('KUSTO_TABLES (JSON): Log Analytics table name -> table name in that database.')
param kustoTables string = '{}'

@description('KUSTO_TIMEOUT_SECONDS.')
param kustoTimeoutSeconds int = 600

@description('GRAPH_ENDPOINT: Microsoft Graph endpoint; empty uses the public cloud default of the code.')
param graphEndpoint string = ''

@description('AZURE_RBAC_SCOPES: scopes whose Azure role assignments are read; empty: not read.')
param azureRbacScopes string = ''

@description('AZURE_RESOURCE_MANAGER_ENDPOINT: empty uses the public cloud default of the code.')
param azureResourceManagerEndpoint string = ''

@description('INGESTION_DELAY_MINUTES.')
param ingestionDelayMinutes int

@description('MAX_LOOKBACK_DAYS.')
param maxLookbackDays int

@description('DETECTION_PARAMETERS (JSON).')
param detectionParameters string

@description('DISABLED_DETECTIONS: rules the audit does not run (ids or names, comma-separated or a JSON list).')
param disabledDetections string = ''

@description('Versionless Key Vault secret URI of the Teams webhook URL; empty: TEAMS_WEBHOOK_URL is not set.')
param teamsWebhookSecretUri string = ''

@description('MAIL_SENDER: mailbox the digest email is sent from; empty: no email.')
param mailSender string = ''

@description('MAIL_TO: comma-separated recipients of the digest email.')
param mailTo string = ''

@description('PUBLIC_BASE_URL: absolute base URL of the HTTP API for the digest\'s links to findings; empty: the app\'s own https host name.')
param publicBaseUrl string = ''

@description('Client id of the Entra app registration for sign-in (entra-app.bicep); empty: no App Service authentication.')
param authClientId string = ''

@description('OWNER_NOTICES: true to email owners about their applications\' credentials (from mailSender).')
@allowed(['true', 'false'])
param ownerNotices string = 'false'

@description('OWNER_NOTICE_DAYS: comma-separated days before a credential\'s end at which its owners are told.')
param ownerNoticeDays string = '30,14,7,1'

@description('OWNER_NOTICE_DOMAINS: comma-separated mail domains owner notices may go to; empty: any.')
param ownerNoticeDomains string = ''

@description('FINDINGS_INGESTION_ENDPOINT: logs ingestion endpoint of the findings data collection rule; empty: findings are not sent to Log Analytics.')
param findingsIngestionEndpoint string = ''

@description('FINDINGS_DCR_IMMUTABLE_ID: immutable id of that data collection rule.')
param findingsRuleImmutableId string = ''

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  //checkov:skip=CKV_AZURE_225:A daily audit job catches up missed windows from its checkpoints, so a zonal outage only delays a run; zone redundancy would pin the plan to fewer regions and ZRS storage.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  //checkov:skip=CKV_AZURE_222:No VNet in this deployment: the findings HTTP API must be reachable on the public endpoint; it is HTTPS-only with TLS 1.2 and access control is the Functions auth level of its routes.
  //checkov:skip=CKV_AZURE_17:Client certificates are not part of the findings API's access model (Functions auth level over TLS 1.2); requiring them would also break azd and portal tooling.
  //checkov:skip=CKV_AZURE_212:Flex Consumption scales from zero and a missed timer run is caught up from checkpoints; always-ready instances would add a fixed monthly cost for no audit value.
  //checkov:skip=CKV_AZURE_213:Flex Consumption manages instance health itself (no health-check path setting); the app has no long-running instance to take out of rotation.
  //checkov:skip=CKV_AZURE_78:FTP is off through the ftp basicPublishingCredentialsPolicies resource below; siteConfig.ftpsState is on Flex Consumption's list of unsupported settings, so it is not set.
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// Settings of the Functions host itself: identity-based host storage and Entra-authenticated
// Application Insights. (Flex Consumption takes runtime and version from functionAppConfig, so
// FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION must not be set.) The storage service
// URIs come from the account's own properties, so sovereign clouds work (`__accountName` would
// assume the public cloud's endpoint suffix).
var hostSettings = {
  AzureWebJobsStorage__blobServiceUri: storageBlobEndpoint
  AzureWebJobsStorage__queueServiceUri: storageQueueEndpoint
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}

// The product's settings (shared/settings.py, every entry with azure=True).
var productSettings = {
  AUDIT_SCHEDULE: auditSchedule
  LOG_ANALYTICS_WORKSPACE_ID: logAnalyticsWorkspaceId
  LOG_ANALYTICS_ENDPOINT: logAnalyticsEndpoint
  LOG_ANALYTICS_TIMEOUT_SECONDS: string(logAnalyticsTimeoutSeconds)
  GRAPH_ENDPOINT: graphEndpoint
  KUSTO_CLUSTER_URL: kustoClusterUrl
  KUSTO_DATABASE: kustoDatabase
  KUSTO_TABLES: kustoTables
  KUSTO_TIMEOUT_SECONDS: string(kustoTimeoutSeconds)
  AZURE_RBAC_SCOPES: azureRbacScopes
  AZURE_RESOURCE_MANAGER_ENDPOINT: azureResourceManagerEndpoint
  AZURE_CLIENT_ID: identityClientId
  FINDINGS_TABLE_ENDPOINT: storageTableEndpoint
  INGESTION_DELAY_MINUTES: string(ingestionDelayMinutes)
  MAX_LOOKBACK_DAYS: string(maxLookbackDays)
  DETECTION_PARAMETERS: detectionParameters
  DISABLED_DETECTIONS: disabledDetections
  MAIL_SENDER: mailSender
  MAIL_TO: mailTo
  PUBLIC_BASE_URL: empty(publicBaseUrl) ? 'https://${functionApp.properties.defaultHostName}' : publicBaseUrl
  OWNER_NOTICES: ownerNotices
  OWNER_NOTICE_DAYS: ownerNoticeDays
  OWNER_NOTICE_DOMAINS: ownerNoticeDomains
  FINDINGS_INGESTION_ENDPOINT: findingsIngestionEndpoint
  FINDINGS_DCR_IMMUTABLE_ID: findingsRuleImmutableId
}

// Secrets: Key Vault references only, resolved with keyVaultReferenceIdentity. Without a
// webhook the setting is left out, so the app sees "not configured" rather than an unresolved
// reference.
var secretSettings = empty(teamsWebhookSecretUri) ? {} : {
  TEAMS_WEBHOOK_URL: '@Microsoft.KeyVault(SecretUri=${teamsWebhookSecretUri})'
}

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  //checkov:skip=CKV_AZURE_13:False positive: checkov reads every sites/config as the 'web' config; this is the 'appsettings' resource, which holds no authentication settings.
  //checkov:skip=CKV_AZURE_63:False positive (appsettings, not the web config); HTTP logs of a Linux Flex Consumption app go to Application Insights.
  //checkov:skip=CKV_AZURE_65:False positive (appsettings, not the web config); errors are traced to Application Insights.
  //checkov:skip=CKV_AZURE_66:False positive (appsettings, not the web config); request traces go to Application Insights.
  //checkov:skip=CKV_AZURE_80:False positive: a Python app, no .NET Framework.
  //checkov:skip=CKV_AZURE_88:False positive: Flex Consumption keeps code in the blob deployment container, not Azure Files.
  //checkov:skip=CKV_AZURE_222:False positive (appsettings, not the site); see the skip on the site resource.
  parent: functionApp
  name: 'appsettings'
  properties: union(hostSettings, productSettings, secretSettings)
}

// No FTP or basic-auth (SCM) publishing: azd deploys with an Entra token. (Flex Consumption has
// no FTP at all, which is why siteConfig.ftpsState is not set: it is on the plan's unsupported list.)
resource ftpPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  // Azure wants a location here (it rejects the policy without one); the Bicep type data lacks it.
  #disable-next-line BCP187
  location: location
  properties: {
    allow: false
  }
}

resource scmPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  // As above: Azure wants the location, the type data lacks it.
  #disable-next-line BCP187
  location: location
  properties: {
    allow: false
  }
}

// Entra sign-in (App Service authentication) in front of the API, when an app registration is
// given. Tokens are validated for the app registration's audience; requests without one still
// reach the Functions host, which checks the function key, so automation keeps working. The
// platform then passes the signed-in person in X-MS-CLIENT-PRINCIPAL* headers (and strips them
// from what clients send); the app records that person on a triage and requires the app role
// Findings.Triage (shared/api/identity.py).
resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = if (!empty(authClientId)) {
  //checkov:skip=CKV_AZURE_13:False positive: checkov reads every sites/config as the 'web' config; this IS the App Service authentication (authsettingsV2) resource.
  //checkov:skip=CKV_AZURE_63:False positive (authsettingsV2, not the web config); HTTP logs of a Linux Flex Consumption app go to Application Insights.
  //checkov:skip=CKV_AZURE_65:False positive (authsettingsV2, not the web config); errors are traced to Application Insights.
  //checkov:skip=CKV_AZURE_66:False positive (authsettingsV2, not the web config); request traces go to Application Insights.
  //checkov:skip=CKV_AZURE_80:False positive: a Python app, no .NET Framework.
  //checkov:skip=CKV_AZURE_88:False positive: Flex Consumption keeps code in the blob deployment container, not Azure Files.
  //checkov:skip=CKV_AZURE_222:False positive (authsettingsV2, not the site); see the skip on the site resource.
  parent: functionApp
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: false
      unauthenticatedClientAction: 'AllowAnonymous'
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: authClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            'api://${authClientId}'
            authClientId
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
  }
}

output name string = functionApp.name
output id string = functionApp.id
output uri string = 'https://${functionApp.properties.defaultHostName}'
