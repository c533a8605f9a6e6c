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
- `audit`: the timer (`%AUDIT_SCHEDULE%`, an NCRONTAB app setting) that runs one audit.

Importing this module stays light: no Azure SDK client is built, no network is touched, the FastAPI app is
built on the first request, and msgraph-sdk (~1,300 modules) and the audit pipeline are imported only when
the timer fires.
"""

from __future__ import annotations

import json
import logging

import azure.functions as func

from shared.lazy_asgi import LazyAsgiApp
from shared.settings import check_settings

log = logging.getLogger("wiaudit.function_app")
check_settings()  # a bad app setting stops the app at start-up, named, instead of failing the first audit


def findings_store():
    """The store the API reads: Table Storage through the Function's managed identity."""
    from shared.audit.build import azure_credential
    from shared.store.tables import TableFindingStore

    return TableFindingStore.from_settings(azure_credential())


def findings_api():
    """The FastAPI app: FastAPI and the API's models cost more than everything else a cold start imports."""
    from shared.api.app import create_api
    from shared.api.identity import easy_auth_enabled

    return create_api(store_factory=findings_store, api_key=None, easy_auth=easy_auth_enabled())


app = func.AsgiFunctionApp(app=LazyAsgiApp(findings_api), http_auth_level=func.AuthLevel.FUNCTION)


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
