"""The directory: applications, service principals, credentials, owners and permissions."""
