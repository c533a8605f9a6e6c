"""GraphMailNotifier with a real msgraph-sdk client against a local Graph sendMail receiver.

The receiver is here rather than tests/servers/graph_server.py because that server requires a lowercase
"message" property, while msgraph-sdk 1.65 serializes the sendMail action parameters as Graph's metadata
names them, "Message" and "SaveToSentItems" (Graph accepts either case).
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from servers._http import LocalServer, QuietHandler
from servers.token_server import ManagedIdentityTokenServer
from test_notify_render import EVIL_NAME, make_digest, small_digest, stored_finding

from shared.notify.email import email_message
from shared.notify.mail import GraphMailNotifier, mail_notifier_from_settings, parse_recipients, text_file_stem
from shared.notify.port import NotificationError
from shared.settings import SettingsError

SENDER = "audit-digest@contoso.com"
RECIPIENTS = ["secops@contoso.com", "identity-team@contoso.com"]


@dataclass(frozen=True)
class SentMail:
    user: str
    raw_path: str
    headers: dict[str, str]
    body: dict[str, Any]


class _Handler(QuietHandler):
    def do_POST(self) -> None:
        owner: SendMailServer = self.server.owner  # type: ignore[attr-defined]
        split = urlsplit(self.path)
        parts = split.path.split("/")
        body = self.read_body()
        with owner.lock:
            owner.attempts += 1
            status = owner.failures.pop(0) if owner.failures else None
        if status is not None:
            self.send_json(status, {"error": {"code": "ServiceUnavailable", "message": "Try again later."}},
                           {"Retry-After": "0"} if status in (429, 503) else None)
            return
        if len(parts) != 5 or parts[:3] != ["", "v1.0", "users"] or parts[4] != "sendMail":
            self.send_json(400, {"error": {"code": "BadRequest", "message": f"unsupported path {split.path}"}})
            return
        headers = {key.lower(): value for key, value in self.headers.items()}
        if owner.token_server is not None:
            token = headers.get("authorization", "").removeprefix("Bearer ")
            if not owner.token_server.is_valid(token):
                self.send_json(401, {"error": {"code": "InvalidAuthenticationToken", "message": "bad token"}})
                return
        with owner.lock:
            owner.sent.append(SentMail(unquote(parts[3]), split.path, headers, json.loads(body)))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()


class SendMailServer(LocalServer):
    """POST /v1.0/users/{id}/sendMail -> 202, the JSON body kept in `sent`; `failures`: statuses to answer first."""

    handler = _Handler

    def __init__(self, token_server: ManagedIdentityTokenServer | None = None) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.sent: list[SentMail] = []
        self.failures: list[int] = []
        self.attempts = 0
        self.token_server = token_server


@pytest.fixture
def graph() -> Iterator[SendMailServer]:
    with SendMailServer() as server:
        yield server


def anonymous_client(server: SendMailServer) -> Any:
    from kiota_abstractions.authentication import AnonymousAuthenticationProvider
    from msgraph import GraphRequestAdapter, GraphServiceClient

    adapter = GraphRequestAdapter(AnonymousAuthenticationProvider())
    adapter.base_url = f"{server.url}/v1.0"
    return GraphServiceClient(request_adapter=adapter)


def test_sends_the_digest_as_graph_sendmail(graph: SendMailServer) -> None:
    digest = small_digest()
    notifier = GraphMailNotifier(SENDER, RECIPIENTS, anonymous_client(graph))
    assert notifier.channel == "email"
    notifier.send(digest)

    assert len(graph.sent) == 1
    sent = graph.sent[0]
    assert sent.user == SENDER and sent.raw_path == "/v1.0/users/audit-digest%40contoso.com/sendMail"
    assert sent.headers["content-type"].startswith("application/json")
    content = email_message(digest)
    text_attachment = base64.b64encode(content.text.encode()).decode()
    assert sent.body == {
        "Message": {
            "@odata.type": "#microsoft.graph.message",
            "subject": content.subject,
            "body": {"contentType": "html", "content": content.html},
            "toRecipients": [{"emailAddress": {"address": address}} for address in RECIPIENTS],
            "attachments": [{"@odata.type": "#microsoft.graph.fileAttachment",
                             "name": f"{text_file_stem(digest)}.txt", "contentType": "text/plain; charset=utf-8",
                             "contentBytes": text_attachment}],
        },
        "SaveToSentItems": False,
    }
    assert content.subject == "Workload identity audit 2024-05-02: 2 findings (1 High, 1 Low)"


def test_escaped_html_reaches_graph(graph: SendMailServer) -> None:
    digest = make_digest([stored_finding(1, principal_name=EVIL_NAME)])
    GraphMailNotifier(SENDER, ["secops@contoso.com"], anonymous_client(graph), attach_text=False).send(digest)
    message = graph.sent[0].body["Message"]
    assert "attachments" not in message
    assert "<script>" not in message["body"]["content"] and "&lt;script&gt;" in message["body"]["content"]


def test_graph_unavailable_is_a_notification_error_after_bounded_retries(graph: SendMailServer) -> None:
    graph.failures = [503] * 5
    notifier = GraphMailNotifier(SENDER, RECIPIENTS, anonymous_client(graph), max_retries=1, retry_delay=0)
    with pytest.raises(NotificationError, match=r"HTTP 503") as caught:
        notifier.send(small_digest())
    assert graph.attempts == 2 and not graph.sent
    assert SENDER in str(caught.value)

    graph.failures = [503]  # one more failure, which the SDK's retry absorbs; same notifier, same client
    notifier.send(small_digest())
    assert len(graph.sent) == 1


def test_forbidden_says_which_permission(graph: SendMailServer) -> None:
    graph.failures = [403]
    with pytest.raises(NotificationError, match=r"Mail\.Send"):
        GraphMailNotifier(SENDER, RECIPIENTS, anonymous_client(graph), max_retries=0).send(small_digest())


def test_send_works_from_inside_a_running_event_loop(graph: SendMailServer) -> None:
    notifier = GraphMailNotifier(SENDER, RECIPIENTS, anonymous_client(graph))

    async def caller() -> None:
        notifier.send(small_digest())

    asyncio.run(caller())
    notifier.send(small_digest())
    assert len(graph.sent) == 2
    notifier.close()


def test_from_settings_with_a_managed_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.identity import ManagedIdentityCredential

    with ManagedIdentityTokenServer() as tokens, SendMailServer(token_server=tokens) as graph:
        for name, value in tokens.environ.items():
            monkeypatch.setenv(name, value)
        recipients = " secops@contoso.com, identity-team@contoso.com,,SECOPS@contoso.com "
        environ = {"MAIL_SENDER": SENDER, "MAIL_TO": recipients, "GRAPH_ENDPOINT": graph.url}
        notifier = mail_notifier_from_settings(ManagedIdentityCredential(), environ)
        assert notifier.recipients == RECIPIENTS
        notifier.send(small_digest())
        assert len(graph.sent) == 1
        assert [request.resource for request in tokens.requests] == [graph.url]  # the scope {endpoint}/.default


@pytest.mark.parametrize(("environ", "names"), [
    ({"MAIL_TO": "secops@contoso.com"}, "MAIL_SENDER"),
    ({"MAIL_SENDER": SENDER}, "MAIL_TO"),
    ({"MAIL_SENDER": SENDER, "MAIL_TO": "secops@contoso.com; other@contoso.com"}, "MAIL_TO"),
    ({"MAIL_SENDER": SENDER, "MAIL_TO": "not-an-address"}, "MAIL_TO"),
    ({"MAIL_SENDER": SENDER, "MAIL_TO": " , "}, "MAIL_TO"),
    ({"MAIL_SENDER": "audit digest", "MAIL_TO": "secops@contoso.com"}, "MAIL_SENDER"),
    ({"MAIL_SENDER": SENDER, "MAIL_TO": "secops@contoso.com", "GRAPH_ENDPOINT": "http://graph.example"},
     "GRAPH_ENDPOINT"),
])
def test_settings_errors_name_the_setting(environ: dict[str, str], names: str) -> None:
    with pytest.raises(SettingsError, match=names):
        mail_notifier_from_settings(object(), environ)  # type: ignore[arg-type]


def test_recipients_and_sender_forms() -> None:
    assert parse_recipients("a@contoso.com,b.c+tag@sub.contoso.com") == ["a@contoso.com", "b.c+tag@sub.contoso.com"]
    with pytest.raises(SettingsError, match="MAIL_TO"):
        parse_recipients("Alice <a@contoso.com>")
    from shared.notify.mail import check_sender

    assert check_sender(" 6a1b2c3d-0000-4000-8000-00000000abcd ") == "6a1b2c3d-0000-4000-8000-00000000abcd"
