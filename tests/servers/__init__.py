"""Local stand-ins that speak the real Azure protocols over HTTP, so the production SDK clients run unchanged.

`token_server` is an App Service style managed-identity token endpoint, `log_analytics_server` the Log Analytics
query API over the embedded KQL engine. Both listen on 127.0.0.1 on a free port, in a background thread.
"""
