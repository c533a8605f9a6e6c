// The workbook over the findings table (WorkloadIdentityFindings_CL) and the workload identities'
// sign-in logs: open findings by severity and their trend, the newest High findings, credential
// hygiene, the identities with most findings, sign-in failures by AADSTS code. Its content is
// infra/workbook/workload-identity-auditor.json, the same file a person can import by hand
// (Workbooks → New → Advanced editor); tests/test_workbook.py validates its queries.

@description('Region of the workbook resource.')
param location string

@description('Resource id of the Log Analytics workspace the workbook reads (the audited, Sentinel workspace).')
param workspaceResourceId string

@description('Tags.')
param tags object = {}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, workspaceResourceId, 'workload-identity-auditor-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'Workload Identity Auditor'
    category: 'sentinel'
    sourceId: workspaceResourceId
    serializedData: loadTextContent('../workbook/workload-identity-auditor.json')
    version: 'Notebook/1.0'
  }
}

output workbookId string = workbook.id
