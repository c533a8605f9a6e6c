"""The Azure Functions app (Python v2 model): the findings API and the audit timer.

Functions:
- `http_app_func`: the FastAPI app (shared/api) on the catch-all route `/api/{*route}`, auth level
  FUNCTION: the host checks the function key before a request reaches FastAPI. With App Service
  authentication on (Entra sign-in), a triage records the signed-in person (shared/api/identity.py).
- `health`: `GET /api/health`, anonymous, returns `{"status": "ok"}` and nothing else. An
  AsgiFunctionApp has one auth level for all its routes, so health is its own function. The host
  matches routes in the order it registers functions, not by specificity (Azure/azure-functions-host
  #9876: by name), and `health` sorts before `http_app_func`; if a host ever let the catch-all win,
  /api/health would simply need the function key (FastAPI answers it the same way), never expose data.
- `browser_pages`: the web pages under `/api/ui/`, auth level ANONYMOUS (a browser cannot send the function key),
  handed to the same FastAPI app. The pages themselves require Entra sign-in (App Service authentication) with the
  `Findings.Triage` role and refuse without it (shared/web/session.py); the function passes on nothing outside
  `/api/ui/`, and its name sorts before `http_app_func` so the host matches it first.
  A triage through either is sent to Log Analytics right after it is saved (shared/export/after_triage.py): the
  Functions ASGI adapter returns the response when the app's call ends, so that delivery (one upload) is part of the
  request's time here, unlike under uvicorn.
- `audit`: the timer (`%AUDIT_SCHEDULE%`, an NCRONTAB app setting) that runs one audit.

Importing this module stays light: no Azure SDK client is built, no network is touched, the FastAPI app is
built on the first request, and msgraph-sdk (~1,300 modules) and the audit pipeline are imported only when
the timer fires.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import urlsplit

import azure.functions as func

from shared.lazy_asgi import LazyAsgiApp
from shared.settings import check_settings
from shared.web.paths import is_web_page

log = logging.getLogger("wiaudit.function_app")
check_settings()  # a bad app setting stops the app at start-up, named, instead of failing the first audit


def findings_store():
    """The store the API reads: Table Storage through the Function's managed identity."""
    from shared.audit.build import azure_credential
    from shared.store.tables import TableFindingStore

    return TableFindingStore.from_settings(azure_credential())


def trail_source():
    """The logs the web pages read an identity's trail from: the ones the audit reads."""
    from shared.audit.build import azure_credential, log_source_from_settings

    return log_source_from_settings(azure_credential())


def findings_export():
    """Where a triage's change goes at once: WorkloadIdentityFindings_CL, when the app settings name it."""
    from shared.audit.build import azure_credential
    from shared.export.ingestion import sink_from_settings

    return sink_from_settings(azure_credential())


def findings_api():
    """The FastAPI app: FastAPI and the API's models cost more than everything else a cold start imports."""
    from shared.api.app import create_api
    from shared.api.identity import easy_auth_enabled

    return create_api(store_factory=findings_store, api_key=None, easy_auth=easy_auth_enabled(),
                      trail_source=trail_source, export_sink=findings_export)


app = func.AsgiFunctionApp(app=LazyAsgiApp(findings_api), http_auth_level=func.AuthLevel.FUNCTION)


@app.function_name("browser_pages")
@app.route(route="ui/{*page}", methods=[func.HttpMethod.GET, func.HttpMethod.POST],
           auth_level=func.AuthLevel.ANONYMOUS)
async def browser_pages(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    if not is_web_page(urlsplit(req.url).path):
        return func.HttpResponse(status_code=404)
    return await app.middleware.handle_async(req, context)


@app.route(route="health", methods=[func.HttpMethod.GET], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({"status": "ok"}), status_code=200, mimetype="application/json")


@app.timer_trigger(schedule="%AUDIT_SCHEDULE%", arg_name="timer", run_on_startup=False)
def audit(timer: func.TimerRequest) -> None:
    from shared.audit import build
    from shared.audit.lease import AuditAlreadyRunning

    if timer.past_due:
        log.warning("audit timer is past due: running the missed audit now (windows catch up from checkpoints)")
    try:
        outcome = build.pipeline_from_settings().run(trigger="timer")
    except AuditAlreadyRunning as error:
        log.info("audit skipped: %s", error)
        return
    run = outcome.run
    log.log(logging.WARNING if run.errors else logging.INFO, "audit run %s %s: %d new finding(s), notified %s, "
            "errors %s", run.id, run.status, len(outcome.new_findings), outcome.notified or "none",
            run.errors or "none")
