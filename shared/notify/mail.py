"""Send the digest email through Microsoft Graph: `POST /users/{sender}/sendMail` with msgraph-sdk.

Permissions: app-only Mail.Send, scoped to the sender mailbox with Exchange RBAC for Applications
(not tenant-wide Mail.Send).

The plain-text part. Graph's JSON sendMail takes a message with exactly one body (HTML or text), so a
multipart/alternative message can only be sent as MIME (`POST .../sendMail`, Content-Type text/plain,
base64 RFC 5322 in the body). We send JSON with the HTML body and attach the plain-text rendering as a
`.txt` file instead, because:
  - MIME sendMail always keeps a copy in the sender's Sent Items (msgraph-sdk's own docstring: "When
    using MIME format: This method saves the message in the Sent Items folder"); with JSON,
    saveToSentItems=false keeps daily copies of findings data out of the sending mailbox;
  - msgraph-sdk has no typed MIME call: `send_mail.post` only takes SendMailPostRequestBody, so MIME
    would be a hand-built RequestInformation around the SDK rather than the SDK;
  - Exchange already derives a text/plain alternative from the HTML for Internet recipients (remote
    domains default to MIME with HTML and text), so text-only readers are covered; the attachment keeps
    the exact plain-text rendering for tickets and scripts. `attach_text=False` leaves it out.

msgraph-sdk is async and large (~1,300 modules), so it is imported inside the functions that use it and
`send` runs the request on an event loop of the notifier's own (a daemon thread), not `asyncio.run`:
the SDK's httpx client keeps pooled connections bound to the loop of its first request, and a second
`asyncio.run` on the same client fails with "Event loop is closed". The loop thread also lets `send`
be called from code that already runs an event loop (it blocks that caller until Graph answers).
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Coroutine, Mapping, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from shared.notify.email import EmailContent, email_message
from shared.notify.port import DeliveryUncertain, Digest, NotificationError, may_have_arrived
from shared.settings import SettingsError, read_setting, require_setting

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

T = TypeVar("T")

_ADDRESS = re.compile(r"^[^@\s,;<>()\[\]\"\\]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def is_address(value: str) -> bool:
    return bool(_ADDRESS.match(value)) and len(value) <= 320


def parse_recipients(raw: str, setting: str = "MAIL_TO") -> list[str]:
    """Comma-separated addresses, deduplicated in order; SettingsError naming `setting` for a bad one."""
    recipients: list[str] = []
    for part in raw.split(","):
        address = part.strip()
        if not address:
            continue
        if not is_address(address):
            raise SettingsError(f"setting {setting}: {address!r} is not an email address; "
                                "expected comma-separated addresses such as secops@contoso.com")
        if address.lower() not in (known.lower() for known in recipients):
            recipients.append(address)
    if not recipients:
        raise SettingsError(f"setting {setting} holds no email address; expected comma-separated addresses")
    return recipients


def check_sender(sender: str, setting: str = "MAIL_SENDER") -> str:
    sender = sender.strip()
    if not (is_address(sender) or _GUID.match(sender)):
        raise SettingsError(f"setting {setting}: {sender!r} is neither a mailbox address (UPN) nor a user object id")
    return sender


class _LoopThread:
    """One event loop in a daemon thread, started on first use: runs coroutines for synchronous callers."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name=self.name, daemon=True).start()
                self._loop = loop
            loop = self._loop
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, loop)
        return future.result()

    def close(self) -> None:
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)


class GraphMailbox:
    """Sends email from `sender`'s mailbox through Graph sendMail: the digest and the owner notices alike.

    `graph_client`: an msgraph `GraphServiceClient` (production: managed identity, see
    `mail_notifier_from_settings`; tests: an anonymous adapter pointed at a local server).
    `max_retries`, `retry_delay`: the SDK retry handler's bounds for 429/503/504 (it honours Retry-After).
    """

    def __init__(self, sender: str, graph_client: Any, *, attach_text: bool = True, max_retries: int = 3,
                 retry_delay: float = 3.0) -> None:
        self.sender = sender
        self.graph_client = graph_client
        self.attach_text = attach_text
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        self._loop = _LoopThread("graph-mail")

    def message_request(self, content: EmailContent, recipients: Sequence[str], text_name: str) -> Any:
        """The SDK's SendMailPostRequestBody of any email: HTML body, `text_name` attached, not saved to Sent Items."""
        from msgraph.generated.models.body_type import BodyType
        from msgraph.generated.models.email_address import EmailAddress
        from msgraph.generated.models.file_attachment import FileAttachment
        from msgraph.generated.models.item_body import ItemBody
        from msgraph.generated.models.message import Message
        from msgraph.generated.models.recipient import Recipient
        from msgraph.generated.users.item.send_mail.send_mail_post_request_body import SendMailPostRequestBody

        message = Message(
            subject=content.subject,
            body=ItemBody(content_type=BodyType.Html, content=content.html),
            to_recipients=[Recipient(email_address=EmailAddress(address=address)) for address in recipients],
        )
        if self.attach_text:
            message.attachments = [FileAttachment(
                odata_type="#microsoft.graph.fileAttachment", name=text_name,
                content_type="text/plain; charset=utf-8", content_bytes=content.text.encode("utf-8"))]
        return SendMailPostRequestBody(message=message, save_to_sent_items=False)

    def send_email(self, content: EmailContent, recipients: Sequence[str], text_name: str, what: str) -> None:
        """Send any email from the same mailbox, with the same bounds and errors; `what` names it in them."""
        self._loop.run(self._post(self.message_request(content, recipients, text_name), what))

    async def _post(self, body: Any, what: str) -> None:
        from kiota_abstractions.api_error import APIError
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from kiota_http.middleware.options import RetryHandlerOption

        config = RequestConfiguration(options=[RetryHandlerOption(delay=self.retry_delay,
                                                                  max_retries=self.max_retries)])
        try:
            await self.graph_client.users.by_user_id(self.sender).send_mail.post(body, request_configuration=config)
        except APIError as error:
            status = error.response_status_code
            hint = ""
            if status in (401, 403):
                hint = (" — the identity needs the Mail.Send application permission, scoped to this mailbox "
                        "with Exchange RBAC for Applications")
            elif status == 404:
                hint = " — no mailbox with that address or id (setting MAIL_SENDER)"
            raise NotificationError(f"Microsoft Graph refused sending {what} from {self.sender} "
                                    f"(HTTP {status}): {error}{hint}") from None
        except Exception as error:  # transport failures, timeouts, authentication errors
            if may_have_arrived(error):
                raise DeliveryUncertain(
                    f"Microsoft Graph took {what} from {self.sender} but gave no answer "
                    f"({type(error).__name__}), and sendMail cannot be checked or sent idempotently, "
                    "so it is not sent again") from None
            raise NotificationError(f"sending {what} from {self.sender} through Microsoft Graph "
                                    f"failed: {type(error).__name__}: {error}") from None

    def close(self) -> None:
        self._loop.close()




class GraphMailNotifier(GraphMailbox):
    """Emails the digest from `sender`'s mailbox to `recipients`; channel "email"."""

    channel = "email"

    def __init__(self, sender: str, recipients: Sequence[str], graph_client: Any, **options: Any) -> None:
        if not recipients:
            raise ValueError("GraphMailNotifier needs at least one recipient")
        super().__init__(sender, graph_client, **options)
        self.recipients = list(recipients)

    def build_request(self, digest: Digest, content: EmailContent | None = None) -> Any:
        """The SDK's SendMailPostRequestBody for `digest` (HTML body, plain text attached, not saved to Sent Items)."""
        return self.message_request(content or email_message(digest), self.recipients,
                                    f"{text_file_stem(digest)}.txt")

    def send(self, digest: Digest) -> None:
        self._loop.run(self.send_async(digest))

    async def send_async(self, digest: Digest) -> None:
        """Send on the running loop (the graph_client's HTTP client must belong to this loop)."""
        await self._post(self.build_request(digest), "the digest email")


def text_file_stem(digest: Digest) -> str:
    return f"workload-identity-audit-{digest.generated_at:%Y-%m-%d}"


def graph_client_for(credential: TokenCredential, endpoint: str) -> Any:
    """A GraphServiceClient that gets tokens from `credential` for `endpoint` and sends them to its host only."""
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from msgraph import GraphRequestAdapter, GraphServiceClient

    endpoint = endpoint.rstrip("/")
    host = urlsplit(endpoint).hostname or ""
    auth = AzureIdentityAuthenticationProvider(credential, scopes=[f"{endpoint}/.default"], allowed_hosts=[host])
    adapter = GraphRequestAdapter(auth)
    adapter.base_url = f"{endpoint}/v1.0"
    return GraphServiceClient(request_adapter=adapter)


def mail_notifier_from_settings(credential: TokenCredential, environ: Mapping[str, str] | None = None,
                                **options: Any) -> GraphMailNotifier:
    """GraphMailNotifier from MAIL_SENDER, MAIL_TO and GRAPH_ENDPOINT; SettingsError naming a missing or bad one."""
    recipients = parse_recipients(require_setting("MAIL_TO", environ))
    sender, client = _mailbox_settings(credential, environ)
    return GraphMailNotifier(sender, recipients, client, **options)


def mailbox_from_settings(credential: TokenCredential, environ: Mapping[str, str] | None = None,
                          **options: Any) -> GraphMailbox:
    """The MAIL_SENDER mailbox on GRAPH_ENDPOINT, for mail other than the digest (the owner notices)."""
    sender, client = _mailbox_settings(credential, environ)
    return GraphMailbox(sender, client, **options)


def _mailbox_settings(credential: TokenCredential, environ: Mapping[str, str] | None) -> tuple[str, Any]:
    sender = check_sender(require_setting("MAIL_SENDER", environ))
    endpoint = str(read_setting("GRAPH_ENDPOINT", environ)).rstrip("/")
    parts = urlsplit(endpoint)
    local = parts.hostname in LOOPBACK_HOSTS
    if parts.scheme not in ("https", "http") or not parts.hostname or (parts.scheme == "http" and not local):
        raise SettingsError(f"setting GRAPH_ENDPOINT: must be an https URL such as https://graph.microsoft.com "
                            f"(plain http only for a local server; got {endpoint!r})")
    if parts.path not in ("", "/"):
        raise SettingsError(f"setting GRAPH_ENDPOINT: give the endpoint without a version or path (got {endpoint!r})")
    return sender, graph_client_for(credential, endpoint)
