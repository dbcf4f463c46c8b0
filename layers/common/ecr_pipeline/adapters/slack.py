"""Slack: the incoming webhook (slack_sdk's WebhookClient) and, in bot-token mode, the Web API's
chat.postMessage and chat.update (slack_sdk's WebClient), both with slack_sdk's retry handlers.

The webhook URL is a secret: it is read from Secrets Manager through Powertools parameters
(cached), handed to WebhookClient and nowhere else. slack_sdk logs the URL at debug and info
level, so the client gets a logger of its own that emits nothing; every error raised here is
built from the status and Slack's error code only.

Delivery is at most once. A request that may have reached Slack (a read timeout, a dropped
connection after sending) is never sent again, since a webhook has no idempotency key: it raises
`SlackDeliveryAmbiguous`, which is neither a delivery nor a failure to retry (notify keeps it for
ops, notify/delivery.py). Connection errors are retried only when the request could not have been
sent (URLError), rate limits after their Retry-After, and 500/503 (Slack posted nothing).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from http.client import HTTPException
from typing import Any, NamedTuple
from urllib.error import URLError

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.interval_calculator import RetryIntervalCalculator
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web import WebClient
from slack_sdk.webhook import WebhookClient

from ecr_pipeline.adapters.clients import client

SECRET_MAX_AGE_SECONDS = 300
TIMEOUT_SECONDS = 10
# A longer Retry-After is not slept through: the Lambda retry comes back later instead.
MAX_RETRY_AFTER_SECONDS = 20

_silent = logging.getLogger("ecr_pipeline.slack_webhook")
_silent.setLevel(logging.CRITICAL + 1)  # slack_sdk checks `level <= DEBUG` before logging the URL
_silent.propagate = False
_silent.addHandler(logging.NullHandler())

_SLACK_ERROR_CODE = re.compile(r"[a-z_]{1,60}")
_SECRET_FIELD = re.compile(r'"(SecretString|SecretBinary)"\s*:\s*"(?:[^"\\]|\\.)*"')


class _RedactSecretValues(logging.Filter):
    """botocore's DEBUG logging prints response bodies: a GetSecretValue body must not reach a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "Secret" in text:
            redacted = _SECRET_FIELD.sub(r'"\1": "***"', text)
            if redacted != text:
                record.msg, record.args = redacted, None
        return True


logging.getLogger("botocore.parsers").addFilter(_RedactSecretValues())


class SlackDeliveryFailed(RuntimeError):
    """Slack did not take the message; it was not posted, so a later retry may send it."""


class SlackDeliveryAmbiguous(RuntimeError):
    """The request went out and no answer came back: Slack may or may not have posted it."""


class WebhookSecretInvalid(ValueError):
    """The secret does not hold a webhook URL (the message never includes the secret's value)."""


class _BoundedRateLimitHandler(RateLimitErrorRetryHandler):
    """Waits out a 429's Retry-After only when it is short."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        retry_after = next((values for name, values in response.headers.items() if name.lower() == "retry-after"), [])
        try:
            return int(retry_after[0]) <= MAX_RETRY_AFTER_SECONDS if retry_after else True
        except ValueError:
            return False


def retry_handlers(interval: RetryIntervalCalculator | None = None, rate_limit_retries: int = 2) -> list[RetryHandler]:
    calculator = interval or BackoffRetryIntervalCalculator(backoff_factor=0.5)
    return [
        # URLError only: raised while connecting or sending, so Slack cannot have posted it.
        ConnectionErrorRetryHandler(max_retry_count=2, interval_calculator=calculator, error_types=[URLError]),
        _BoundedRateLimitHandler(max_retry_count=rate_limit_retries),
        ServerErrorRetryHandler(max_retry_count=2, interval_calculator=calculator),
    ]


def webhook_url_from_secret(value: str | bytes | dict[str, Any] | None, secret_name: str) -> str:
    """The URL from the secret's value: the URL itself, or JSON with `url` or `webhook_url`."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    if isinstance(text, str) and text.strip().startswith("{"):
        try:
            text = json.loads(text)
        except ValueError:
            raise WebhookSecretInvalid(f"secret {secret_name} is neither a URL nor valid JSON") from None
    if isinstance(text, dict):
        text = text.get("url") or text.get("webhook_url")
    if not isinstance(text, str) or not text.strip().startswith(("https://", "http://")):
        raise WebhookSecretInvalid(
            f"secret {secret_name} must hold the webhook URL, or JSON with a 'url' key holding it"
        )
    return text.strip()


def secret_url_source(secret_name: str, secrets_client: Any = None) -> Callable[[], str]:
    """A function returning the webhook URL, read through Powertools parameters and cached."""
    provider = SecretsProvider(boto3_client=secrets_client or client("secretsmanager"))

    def url() -> str:
        return webhook_url_from_secret(provider.get(secret_name, max_age=SECRET_MAX_AGE_SECONDS), secret_name)

    return url


class SlackWebhook:
    def __init__(
        self,
        url_source: Callable[[], str],
        *,
        timeout: int = TIMEOUT_SECONDS,
        interval: RetryIntervalCalculator | None = None,
    ) -> None:
        self._url_source = url_source
        self.timeout = timeout
        self._handlers = retry_handlers(interval)

    def send(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Post the payload. Returns {"status": "sent"}; raises SlackDeliveryFailed when Slack certainly
        did not post it, SlackDeliveryAmbiguous when it may or may not have."""
        url = self._url_source()
        webhook = WebhookClient(url, timeout=self.timeout, logger=_silent, retry_handlers=self._handlers)
        try:
            response = webhook.send_dict(payload)
        except URLError as error:
            raise SlackDeliveryFailed(f"could not reach the Slack webhook: {_reason(error.reason)}") from None
        except (TimeoutError, ConnectionError, OSError, HTTPException) as error:
            # The request went out; whether Slack posted it is unknown. Not sending again keeps it at most once.
            raise SlackDeliveryAmbiguous(f"Slack webhook gave no answer: {type(error).__name__}") from None
        except Exception as error:
            # Named by type only: slack_sdk's own messages can carry the URL.
            raise SlackDeliveryFailed(f"Slack webhook call failed: {type(error).__name__}") from None
        if response.status_code == 200:
            return {"status": "sent"}
        raise SlackDeliveryFailed(f"Slack webhook answered {response.status_code} {_error_code(response.body)}")


def _error_code(body: str | None) -> str:
    """Slack's error code (`no_service`, `invalid_payload`, ...); any other body is not repeated."""
    words = (body or "").split()
    return words[0] if words and _SLACK_ERROR_CODE.fullmatch(words[0]) else "(response withheld)"


def _reason(reason: object) -> str:
    return type(reason).__name__ if isinstance(reason, BaseException) else "connection error"


# --- bot-token mode: the Web API (chat.postMessage, chat.update) --------------------------------

SLACK_API_URL = "https://slack.com/api/"
# A burst of pushes meets chat.postMessage's one message per second per channel: each 429 is waited out.
BOT_RATE_LIMIT_RETRIES = 5


class BotCredentials(NamedTuple):
    token: str
    api_url: str = SLACK_API_URL


class BotTokenSecretInvalid(ValueError):
    """The secret does not hold a bot token (the message never includes the secret's value)."""


def bot_credentials_from_secret(value: str | bytes | dict[str, Any] | None, secret_name: str) -> BotCredentials:
    """The token from the secret's value: the token itself, or JSON with `token` (and optionally
    `api_url`, the Web API's base URL: GovSlack's, or a stand-in's)."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    api_url = SLACK_API_URL
    if isinstance(text, str) and text.strip().startswith("{"):
        try:
            text = json.loads(text)
        except ValueError:
            raise BotTokenSecretInvalid(f"secret {secret_name} is neither a token nor valid JSON") from None
    if isinstance(text, dict):
        given_url = text.get("api_url")
        if given_url is not None:
            if not isinstance(given_url, str) or not given_url.startswith(("https://", "http://")):
                raise BotTokenSecretInvalid(f"secret {secret_name}: api_url must be an http(s) URL")
            api_url = given_url if given_url.endswith("/") else given_url + "/"
        text = text.get("token")
    if not isinstance(text, str) or not text.strip().startswith("xox"):
        raise BotTokenSecretInvalid(
            f"secret {secret_name} must hold a Slack bot token (xoxb-...), or JSON with a 'token' key holding it"
        )
    return BotCredentials(text.strip(), api_url)


def secret_bot_credentials(secret_name: str, secrets_client: Any = None) -> Callable[[], BotCredentials]:
    """A function returning the bot token (and API URL), read through Powertools parameters and cached."""
    provider = SecretsProvider(boto3_client=secrets_client or client("secretsmanager"))

    def credentials() -> BotCredentials:
        return bot_credentials_from_secret(provider.get(secret_name, max_age=SECRET_MAX_AGE_SECONDS), secret_name)

    return credentials


class SlackBotApi:
    """chat.postMessage and chat.update through slack_sdk's WebClient, with the same retry rules as the webhook."""

    def __init__(
        self,
        credentials: Callable[[], BotCredentials],
        *,
        timeout: int = TIMEOUT_SECONDS,
        interval: RetryIntervalCalculator | None = None,
        rate_limit_retries: int = BOT_RATE_LIMIT_RETRIES,
    ) -> None:
        self._credentials = credentials
        self.timeout = timeout
        self._handlers = retry_handlers(interval, rate_limit_retries)

    def _client(self) -> WebClient:
        credentials = self._credentials()
        return WebClient(
            token=credentials.token,
            base_url=credentials.api_url,
            timeout=self.timeout,
            logger=_silent,
            retry_handlers=self._handlers,
        )

    def post_message(self, channel: str, payload: dict[str, Any], thread_ts: str = "") -> str:
        arguments = {**payload, "channel": channel}
        if thread_ts:
            arguments["thread_ts"] = thread_ts
        response = self._call("chat.postMessage", lambda web: web.chat_postMessage(**arguments))
        return str(response.get("ts", ""))

    def update_message(self, channel: str, ts: str, payload: dict[str, Any]) -> None:
        fields = {key: value for key, value in payload.items() if key in ("text", "blocks")}
        self._call("chat.update", lambda web: web.chat_update(channel=channel, ts=ts, **fields))

    def _call(self, method: str, call: Callable[[WebClient], Any]) -> Any:
        try:
            return call(self._client())
        except SlackApiError as error:
            code = error.response.get("error") if isinstance(error.response.data, dict) else None
            status = error.response.status_code
            shown = code if isinstance(code, str) and _SLACK_ERROR_CODE.fullmatch(code) else "(response withheld)"
            raise SlackDeliveryFailed(f"Slack {method} answered {status} {shown}") from None
        except URLError as error:
            raise SlackDeliveryFailed(f"could not reach Slack for {method}: {_reason(error.reason)}") from None
        except (TimeoutError, ConnectionError, OSError, HTTPException) as error:
            raise SlackDeliveryAmbiguous(f"Slack {method} gave no answer: {type(error).__name__}") from None
        except Exception as error:
            raise SlackDeliveryFailed(f"Slack {method} call failed: {type(error).__name__}") from None
