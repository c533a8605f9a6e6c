"""Benchmark: the bulk Graph inventory against the naive one-request-per-principal read.

Run from the repository root: `python -m benchmarks.graph_inventory [--sizes 1000 20000]
[--latency-ms 20] [--naive-sample 500]`.

Both reads go through msgraph-sdk (request builders, request adapter, retry middleware) to the
local Graph v1.0 server (tests/servers/graph_server.py) serving a generated tenant
(tests/directory_fixtures.py), with the same added latency per request and the same bound on
concurrent requests. The naive read is the shape an enrichment step takes when it asks Graph
per principal: list the principals, then GET each one, its owners and its appRoleAssignments.
For tenants larger than `--naive-sample` principals the naive read runs on a sample and its
time is extrapolated linearly (its request count is exact arithmetic); the output says so.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from shared.directory.graph import OWNER_FIELDS, SERVICE_PRINCIPAL_FIELDS, GraphDirectory, _Reader  # noqa: E402
from tests.directory_fixtures import EXPORTED_AT, make_snapshot  # noqa: E402
from tests.servers.graph_server import GraphServer  # noqa: E402

CONCURRENCY = 4


def anonymous_adapter(server: GraphServer) -> Any:
    from kiota_abstractions.authentication import AnonymousAuthenticationProvider
    from msgraph import GraphRequestAdapter

    adapter = GraphRequestAdapter(AnonymousAuthenticationProvider())
    adapter.base_url = server.url
    return adapter


def directory_for(server: GraphServer, tenant_id: str) -> GraphDirectory:
    return GraphDirectory(None, request_adapter=anonymous_adapter(server), tenant_id=tenant_id,
                          max_concurrency=CONCURRENCY, clock=lambda: EXPORTED_AT)


def bulk(server: GraphServer, tenant_id: str) -> tuple[int, float, int]:
    server.reset_counts()
    started = time.perf_counter()
    snapshot = directory_for(server, tenant_id).inventory()
    return server.request_count, time.perf_counter() - started, len(snapshot.servicePrincipals)


async def _naive(server: GraphServer, tenant_id: str, limit: int | None) -> int:
    """List principal ids, then per principal: GET it, its owners, its appRoleAssignments."""
    reader = _Reader(directory_for(server, tenant_id), anonymous_adapter(server))
    client = reader.client
    ids = [item["id"] async for item in reader.pages(client.service_principals, "ids", select=["id"], top=999)]
    ids = ids[:limit] if limit else ids
    resource_roles: dict[str, dict[str, str]] = {}

    async def one(sp_id: str) -> None:
        item = client.service_principals.by_service_principal_id(sp_id)
        await reader.get_json(item, f"principal {sp_id}", select=SERVICE_PRINCIPAL_FIELDS)
        [o async for o in reader.pages(item.owners, "owners", select=OWNER_FIELDS)]
        async for row in reader.pages(item.app_role_assignments, "assignments"):
            resource = row["resourceId"]
            if resource not in resource_roles:  # the permission's name needs the resource's appRoles
                resource_roles[resource] = {}
                document = await reader.get_json(client.service_principals.by_service_principal_id(resource),
                                                 "resource", select=["id", "appRoles"])
                resource_roles[resource] = {r["id"]: r["value"] for r in document.get("appRoles", [])}

    await asyncio.gather(*(one(sp_id) for sp_id in ids))
    return len(ids)


def naive(server: GraphServer, tenant_id: str, limit: int | None) -> tuple[int, float, int]:
    server.reset_counts()
    started = time.perf_counter()
    principals = asyncio.run(_naive(server, tenant_id, limit))
    return server.request_count, time.perf_counter() - started, principals


def import_times(server_url: str, tenant_id: str) -> list[tuple[str, float]]:
    """Fresh-process times: import the entry point, then the first inventory (which loads msgraph-sdk)."""
    module = "function_app" if (REPO / "function_app.py").exists() else "shared.directory.graph"
    code = f"""
import sys, time
t0 = time.perf_counter()
import {module}
t1 = time.perf_counter()
sys.path.insert(0, {str(REPO)!r})
from benchmarks.graph_inventory import anonymous_adapter
from shared.directory.graph import GraphDirectory
class S:  # what anonymous_adapter needs of a server
    url = {server_url!r}
GraphDirectory(None, request_adapter=anonymous_adapter(S), tenant_id={tenant_id!r}).inventory()
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    first, second = (float(x) for x in out.stdout.split())
    return [(f"import {module}", first), ("first inventory after it (loads msgraph-sdk; 50-SP tenant)", second)]


def sdk_model_cost(server: GraphServer) -> tuple[float, float, int]:
    """Seconds per object parsing one page into msgraph-sdk's typed models vs reading it as JSON."""
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph import GraphServiceClient

    async def run() -> tuple[float, float, int]:
        adapter = anonymous_adapter(server)
        client = GraphServiceClient(request_adapter=adapter)
        builder = client.service_principals
        query = builder.ServicePrincipalsRequestBuilderGetQueryParameters(select=SERVICE_PRINCIPAL_FIELDS, top=200)
        await builder.get(RequestConfiguration(query_parameters=query))  # warm the imports
        started = time.perf_counter()
        page = await builder.get(RequestConfiguration(query_parameters=query))
        typed = time.perf_counter() - started
        info = builder.to_get_request_information(RequestConfiguration(query_parameters=query))
        started = time.perf_counter()
        import json

        raw = json.loads(await adapter.send_primitive_async(info, "bytes", {}))
        plain = time.perf_counter() - started
        count = len(page.value or [])
        assert count == len(raw["value"])
        return typed / count, plain / count, count

    return asyncio.run(run())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 20000])
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--naive-max", type=int, default=1000, help="largest tenant the naive read runs in full")
    parser.add_argument("--naive-sample", type=int, default=500, help="sample of principals above --naive-max")
    args = parser.parse_args(argv)
    latency = args.latency_ms / 1000

    print(f"Graph inventory benchmark: local Graph v1.0 server, {args.latency_ms:g} ms added per request, "
          f"at most {CONCURRENCY} requests in flight, pages of 999 (100 with $expand, as Graph does).")
    for size in args.sizes:
        tenant = make_snapshot(size, seed=1)
        with GraphServer(tenant, latency=latency) as server:
            requests, seconds, principals = bulk(server, tenant.tenantId)
            assert principals == size
            print(f"\n{size:,} service principals ({len(tenant.applications):,} applications)")
            print(f"  bulk inventory : {requests:>7,} requests {seconds:>9.2f} s")
            sample = None if size <= args.naive_max else args.naive_sample
            n_requests, n_seconds, n_principals = naive(server, tenant.tenantId, sample)
            list_pages = math.ceil(size / 999)
            if sample is None:
                print(f"  naive per-SP   : {n_requests:>7,} requests {n_seconds:>9.2f} s")
            else:
                resources = {a.resourceId for sp in tenant.servicePrincipals for a in sp.appRoleAssignments}
                est_requests = list_pages + 3 * size + len(resources)  # exact: list, 3 per principal, resources
                est_seconds = n_seconds * size / n_principals
                print(f"  naive per-SP   : {est_requests:>7,} requests {est_seconds:>9.2f} s  "
                      f"(EXTRAPOLATED from a {n_principals}-principal sample: {n_requests:,} requests, "
                      f"{n_seconds:.2f} s)")
                n_requests, n_seconds = est_requests, est_seconds
            print(f"  ratio naive/bulk: {n_requests / requests:>6.1f}x requests {n_seconds / seconds:>6.1f}x time")

    small = make_snapshot(50, seed=2)
    with GraphServer(small) as server:
        print("\nStart-up (fresh processes):")
        for label, seconds in import_times(server.url, small.tenantId):
            print(f"  {label:<60} {seconds:6.2f} s")
        typed, plain, count = sdk_model_cost(server)
        print(f"\nParsing a page of {count} service principals: msgraph-sdk typed models {typed * 1000:.2f} ms/object, "
              f"plain JSON {plain * 1000:.3f} ms/object (the adapter reads JSON; see shared/directory/graph.py).")


if __name__ == "__main__":
    main()
