"""Map raw diagnostic-settings records (what Entra and Azure write to Storage or Event Hub) to the Log Analytics
tables and columns the detections query, in SQL.

A record is `{"time", "category", "properties": {...}, ...}`. Fields a newer service version adds are ignored; a
missing optional field is simply empty. Each function here returns SQL expressions over a staged record `item`
(JSON); `Paths` collects the JSON paths a table needs so each record is parsed once.
"""

from __future__ import annotations

from shared.tables import table_schemas

CATEGORY_TABLES = {
    "ServicePrincipalSignInLogs": "AADServicePrincipalSignInLogs",
    "ManagedIdentitySignInLogs": "AADManagedIdentitySignInLogs",
    "NonInteractiveUserSignInLogs": "AADNonInteractiveUserSignInLogs",
    "SignInLogs": "SigninLogs",
    "AuditLogs": "AuditLogs",
    "MicrosoftGraphActivityLogs": "MicrosoftGraphActivityLogs",
    "RiskyServicePrincipals": "AADRiskyServicePrincipals",
    "ServicePrincipalRiskEvents": "AADServicePrincipalRiskEvents",
    "AuditEvent": "AzureDiagnostics",
    "WorkflowRuntime": "AzureDiagnostics",  # Logic App (Consumption) runs, triggers and actions
}
# The activity log's categories; Action, Write and Delete are what the legacy log profile archived.
ACTIVITY_CATEGORIES = ("Administrative", "Security", "ServiceHealth", "Alert", "Recommendation", "Policy",
                       "Autoscale", "ResourceHealth", "Action", "Write", "Delete")
# Where a record without a top-level `time` says when it happened: audit and sign-in properties, the activity
# log's REST shape.
TIME_FALLBACKS = ("$.properties.activityDateTime", "$.properties.createdDateTime", "$.eventTimestamp")

_ENVELOPE = {
    "time": "TimeGenerated", "operationName": "OperationName", "operationVersion": "OperationVersion",
    "category": "Category", "tenantId": "TenantId", "resultType": "ResultType",
    "resultSignature": "ResultSignature", "resultDescription": "ResultDescription", "durationMs": "DurationMs",
    "callerIpAddress": "IPAddress", "correlationId": "CorrelationId", "identity": "Identity", "Level": "Level",
    "level": "Level", "location": "Location", "resourceId": "_ResourceId",
}
_RENAMES = {
    "ipAddress": "IPAddress", "resourceId": "ResourceIdentity", "location": "LocationDetails",
    "appliedConditionalAccessPolicies": "ConditionalAccessPolicies", "activityDisplayName": "OperationName",
    "operationType": "AADOperationType", "userAgent": "UserAgent", "status": "Status",
    "processingTimeInMilliseconds": "ProcessingTimeInMs",  # where the table has no ProcessingTimeInMilliseconds
}
_AUDIT_EXTRA = {"activityDisplayName": "ActivityDisplayName"}
_OBJECT_ID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"
_GUID = "^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
_DATETIME = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})?$"


class Paths:
    """JSON paths one table reads from each record, extracted together: `paths("$.time")` is its value."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def __call__(self, path: str) -> str:
        if path not in self.paths:
            self.paths.append(path)
        return f"_v[{self.paths.index(path) + 1}]"

    def extract(self, source: str = "item") -> str:
        listed = ", ".join("'" + path.replace("'", "''") + "'" for path in self.paths) or "'$.__none__'"
        return f"json_extract({source}, [{listed}])"


def key_path(prefix: str, key: str) -> str:
    return prefix + '."' + key.replace('"', '\\"') + '"'


ROUTING_PATHS = ("$.category", "$.properties", "$.resourceId")  # what `route` reads, extracted in one parse


def route(fields: str, hint: str) -> str:
    """SQL: the table of a staged record whose ROUTING_PATHS were extracted into the list `fields`: raw records by
    category (NULL for an unknown one), others `hint`."""
    tables = " ".join(f"WHEN '{category}' THEN '{table}'" for category, table in CATEGORY_TABLES.items())
    activity = ", ".join(f"'{category}'" for category in ACTIVITY_CATEGORIES)
    category = category_of(fields)
    return (f"CASE WHEN {is_raw(fields)} THEN (CASE WHEN {category} IN ({activity}) THEN 'AzureActivity' "
            f"ELSE (CASE {category} {tables} END) END) ELSE {hint} END")


def is_raw(fields: str) -> str:
    return f"({fields}[1] IS NOT NULL AND ({fields}[2] IS NOT NULL OR {fields}[3] IS NOT NULL))"


def category_of(fields: str) -> str:
    return f"({fields}[1] ->> '$')"


def raw_time(paths: Paths) -> str:
    return f"coalesce({paths('$.time')}, {', '.join(paths(path) for path in TIME_FALLBACKS)})"


def entra_columns(table: str, property_keys: list[str], paths: Paths) -> dict[str, str]:
    """Column -> JSON expression for an Entra record: the envelope, then its properties (which win), matched to the
    columns case-insensitively (`riskEventTypes_v2` is `RiskEventTypes_V2`)."""
    columns = table_schemas()[table].columns
    by_lower = {name.lower(): name for name in columns}
    mapped: dict[str, list[str]] = {}
    for key, column in _ENVELOPE.items():
        if column in columns:
            mapped.setdefault(column, []).append(paths(key_path("$", key)))
    for key in property_keys:
        value = paths(key_path("$.properties", key))
        column = next((by_lower[name.lower()] for name in (_RENAMES.get(key), key[:1].upper() + key[1:])
                       if name and name.lower() in by_lower), None)
        for target in (column, _AUDIT_EXTRA.get(key)):
            if target in columns:
                mapped.setdefault(target, []).insert(0, value)
    expressions = {column: f"coalesce({', '.join(values)})" for column, values in mapped.items()}
    expressions["TimeGenerated"] = f"coalesce({expressions.get('TimeGenerated', 'NULL')}, {raw_time(paths)})"
    tenant = by_lower.get("aadtenantid")
    if tenant:
        expressions[tenant] = (f"coalesce({expressions.get(tenant, 'NULL')}, {paths('$.tenantId')}, "
                               f"{paths('$.properties.tenantId')})")
    if "ResultDescription" in columns:
        given = expressions.get("ResultDescription", "NULL")
        expressions["ResultDescription"] = (f"CASE WHEN coalesce({given} ->> '$', '') = '' "
                                            f"THEN coalesce({paths('$.properties.status.failureReason')}, {given}) "
                                            f"ELSE {given} END")
    return expressions


def _text(sql: str) -> str:
    return f"to_json({sql})"


def _resource_parts(resource_id: str) -> dict[str, str]:
    """SQL over a resource id: its subscription, resource group, provider and resource name, as Azure shows them."""
    parts = f"string_split(trim({resource_id}, '/'), '/')"

    def after(name: str) -> str:
        return f"coalesce({parts}[list_position(list_transform({parts}, lambda x: lower(x)), '{name}') + 1], '')"

    return {
        "SubscriptionId": after("subscriptions"),
        "ResourceGroup": f"upper({after('resourcegroups')})",
        "ResourceProvider": f"upper({after('providers')})",
        "Resource": f"CASE WHEN len({parts}) % 2 = 0 THEN upper({parts}[-1]) ELSE '' END",
    }


def activity_columns(paths: Paths) -> dict[str, str]:
    """Column -> JSON expression for an activity-log record (Claims, Authorization and Properties as text and
    dynamic, Caller = the caller's object id for a service principal)."""
    resource_id = f"coalesce({paths('$.resourceId')} ->> '$', '')"
    parts = _resource_parts(resource_id)
    claims, authorization, properties = (paths("$.identity.claims"), paths("$.identity.authorization"),
                                         paths("$.properties"))
    http_request = paths("$.properties.httpRequest")
    return {
        "TimeGenerated": raw_time(paths),
        "OperationNameValue": paths("$.operationName"),
        "OperationName": paths("$.operationName"),
        "CategoryValue": paths("$.category"),
        "Category": paths("$.category"),
        "ActivityStatusValue": paths("$.resultType"),
        "ActivityStatus": paths("$.resultType"),
        "ActivitySubstatusValue": paths("$.resultSignature"),
        "Caller": f"coalesce({paths(key_path('$.identity.claims', _OBJECT_ID_CLAIM))}, "
                  f"{paths('$.identity.claims.name')}, {paths('$.caller')})",
        "CallerIpAddress": f"coalesce({paths('$.callerIpAddress')}, {paths('$.identity.claims.ipaddr')})",
        "Claims": _as_text(claims),
        "Claims_d": _nonempty(claims),
        "Authorization": _as_text(authorization),
        "Authorization_d": _nonempty(authorization),
        "Properties": _as_text(properties),
        "Properties_d": _nonempty(properties),
        "CorrelationId": paths("$.correlationId"),
        "Level": f"coalesce({paths('$.level')}, {paths('$.Level')})",
        "ResourceId": _text(resource_id),
        "_ResourceId": _text(f"lower({resource_id})"),
        "SubscriptionId": _text(parts["SubscriptionId"]),
        "ResourceGroup": _text(parts["ResourceGroup"]),
        "ResourceProviderValue": _text(parts["ResourceProvider"]),
        "TenantId": paths("$.tenantId"),
        "HTTPRequest": f"CASE WHEN json_type({http_request}) IN ('OBJECT', 'ARRAY') "
                       f"THEN to_json({http_request}::VARCHAR) ELSE {http_request} END",
    }


def _nonempty(value: str) -> str:
    """An object that has fields, else NULL (Log Analytics leaves an empty Claims_d empty)."""
    return f"CASE WHEN json_type({value}) = 'OBJECT' AND {value} <> '{{}}' THEN {value} END"


def _as_text(value: str) -> str:
    return f"CASE WHEN json_type({value}) = 'OBJECT' AND {value} <> '{{}}' THEN to_json({value}::VARCHAR) END"


_ROOTS = (("$.properties", ""), ("$.identity", "identity_"))  # flattened as Log Analytics does; the envelope is not


def diagnostics_shapes(source: str) -> str:
    """SQL: (_id, item, shape) for the records in `source` (_id, item): records of one shape have the same fields
    of the same JSON types (a digest of json_structure), so the fields are found once per shape. NULL for a record
    holding an array: records of one structure may hold arrays of different lengths, hence different fields."""
    return (f"SELECT _id, item, CASE WHEN NOT contains(structure, '[') THEN md5(structure) END AS shape "
            f"FROM (SELECT _id, item, json_structure(item)::VARCHAR AS structure FROM {source})")


def diagnostics_fields(examples: str) -> str:
    """SQL: (shape, path, base, type) of the fields of each record in `examples` (shape, item): their JSON path,
    their column name before the type suffix and their JSON type."""
    return f"SELECT key AS shape, path, base, type FROM ({_fields(examples, 'shape')})"


def diagnostics_leaves(shaped: str, fields: dict[str, list[tuple[str, str, str]]]) -> str:
    """SQL: (_id, name, value) for every field of the AzureDiagnostics records in `shaped` (_id, item, shape),
    flattened and typed by its value as Log Analytics names them: `identity.claim.oid` (a GUID) ->
    `identity_claim_oid_g`, a Logic App's `startTime` (ISO 8601) -> `startTime_t`. Arrays stay whole (as text);
    nulls are left out. `fields[shape]` lists (path, base, type) of a shape's fields: those records are read with
    one json_extract; the others (no shape, or one not listed) are walked by json_tree."""
    branches = []
    for shape, listed in fields.items():
        paths, bases, types = (", ".join(_quoted(entry[i]) for entry in listed) for i in range(3))
        branches.append(f"""
            SELECT _id, base || {_suffix('type', 'value')} AS name, value FROM (
                SELECT _id, unnest([{bases}]) AS base, unnest([{types}]) AS type,
                       unnest(json_extract(item, [{paths}])) AS value
                FROM {shaped} WHERE shape = {_quoted(shape)})""")
    known = ", ".join(_quoted(shape) for shape in fields) or "NULL"
    rest = f"(SELECT _id, item FROM {shaped} WHERE shape IS NULL OR shape NOT IN ({known}))"
    branches.append(f"SELECT key AS _id, base || {_suffix('type', 'value')} AS name, value "
                    f"FROM ({_fields(rest, '_id')})")
    return " UNION ALL ".join(branches)


def _fields(source: str, key: str) -> str:
    """SQL: (key, path, base, type, value) for every field json_tree finds below the roots in `source` (key, item):
    scalars and arrays, not nulls, not what lies inside an array."""
    branches = []
    for root, prefix in _ROOTS:
        base = (f"'{prefix}' || trim(regexp_replace(substr(t.fullkey, {len(root) + 2}), '[^A-Za-z0-9]+', '_', 'g'), "
                "'_')")
        branches.append(f"""
            SELECT s.{key} AS key, t.fullkey AS path, {base} AS base, t.type, t.value
            FROM {source} s, json_tree(s.item, '{root}') t
            WHERE t.fullkey <> '{root}' AND t.type NOT IN ('OBJECT', 'NULL')
              AND NOT contains(substr(t.path, {len(root) + 1}), '[')""")
    return " UNION ALL ".join(branches)


def _suffix(kind: str, value: str) -> str:
    return (f"CASE WHEN {kind} = 'BOOLEAN' THEN '_b' WHEN {kind} IN ('UBIGINT', 'BIGINT', 'DOUBLE') THEN '_d' "
            f"WHEN {kind} = 'VARCHAR' AND regexp_matches({value} ->> '$', '{_GUID}') THEN '_g' "
            f"WHEN {kind} = 'VARCHAR' AND regexp_matches({value} ->> '$', '{_DATETIME}') THEN '_t' ELSE '_s' END")


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def diagnostics_columns(paths: Paths) -> dict[str, str]:
    """Column -> JSON expression for the envelope of an AzureDiagnostics record (its flattened fields come from
    `diagnostics_leaves`)."""
    resource_id = f"coalesce({paths('$.resourceId')} ->> '$', '')"
    parts = _resource_parts(resource_id)
    return {
        "TimeGenerated": raw_time(paths),
        "Category": paths("$.category"),
        "OperationName": paths("$.operationName"),
        "OperationVersion": paths("$.operationVersion"),
        "ResultType": paths("$.resultType"),
        "ResultSignature": paths("$.resultSignature"),
        "ResultDescription": paths("$.resultDescription"),
        "DurationMs": paths("$.durationMs"),
        "CallerIPAddress": paths("$.callerIpAddress"),
        "CorrelationId": paths("$.correlationId"),
        "ResourceId": _text(f"upper({resource_id})"),
        "_ResourceId": _text(f"lower({resource_id})"),
        "SubscriptionId": _text(parts["SubscriptionId"]),
        "ResourceGroup": _text(parts["ResourceGroup"]),
        "ResourceProvider": _text(parts["ResourceProvider"]),
        "Resource": _text(parts["Resource"]),
        "ResourceType": _text(f"CASE WHEN length({resource_id}) - length(replace({resource_id}, '/', '')) > 2 "
                              f"THEN upper(string_split(trim({resource_id}, '/'), '/')[-2]) ELSE '' END"),
        "workflowId_s": paths("$.workflowId"),
    }
