"""The tier model: Graph (and other APIs') application permissions, Entra roles and Azure roles with the tier
Cloud-Architekt's AzurePrivilegedIAM classification gives them (MIT, see SOURCE.md and LICENSE here).

`lookup` answers "what tier is X"; `refresh` rewrites the copy from upstream (`wiaudit tiers refresh`).
"""
