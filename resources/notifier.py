"""The ``notifier`` resource: where messages about finished training runs go.

A webhook (a Slack-style incoming webhook, or any HTTP endpoint that takes JSON) and, optionally,
e-mail through SMTP. Both are off unless configured, by resource config or by the environment
variables named below. A failing destination is reported back, never raised: a notification must
not fail anything.
"""

from __future__ import annotations

import json
import os
import smtplib
import urllib.error
import urllib.request
from email.message import EmailMessage

import dagster as dg
from pydantic import Field

WEBHOOK_ENV = "BIO_ASSETS_WEBHOOK_URL"
UI_URL_ENV = "BIO_ASSETS_UI_URL"
SMTP_HOST_ENV = "BIO_ASSETS_SMTP_HOST"
EMAIL_TO_ENV = "BIO_ASSETS_NOTIFY_EMAIL"


class NotifierResource(dg.ConfigurableResource):
    """Webhook and e-mail destinations of run notifications; empty means off."""

    webhook_url: str = Field(
        default_factory=lambda: os.environ.get(WEBHOOK_ENV, ""), description=f"JSON webhook; default ${WEBHOOK_ENV}"
    )
    ui_url: str = Field(
        default_factory=lambda: os.environ.get(UI_URL_ENV, "http://127.0.0.1:3000"),
        description="base URL of the Dagster UI, for links in messages",
    )
    smtp_host: str = Field(default_factory=lambda: os.environ.get(SMTP_HOST_ENV, ""), description="empty: no e-mail")
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_user: str = ""
    smtp_password: str = Field(default_factory=lambda: os.environ.get("BIO_ASSETS_SMTP_PASSWORD", ""))
    email_from: str = "bio-assets@localhost"
    email_to: str = Field(
        default_factory=lambda: os.environ.get(EMAIL_TO_ENV, ""), description="comma-separated recipients"
    )
    timeout_seconds: float = 10.0

    def enabled(self) -> bool:
        return bool(self.webhook_url or (self.smtp_host and self.email_to))

    def run_url(self, run_id: str) -> str:
        return f"{self.ui_url.rstrip('/')}/runs/{run_id}"

    def send(self, payload: dict, subject: str) -> list[str]:
        """Deliver ``payload`` (JSON to the webhook, its text by e-mail); the failures, as messages."""
        failures = []
        if self.webhook_url:
            try:
                self._post(payload)
            except (OSError, ValueError) as err:  # URLError and HTTPError are OSErrors
                failures.append(f"webhook {self.webhook_url}: {err}")
        if self.smtp_host and self.email_to:
            try:
                self._mail(subject, payload.get("text", ""))
            except (OSError, smtplib.SMTPException) as err:
                failures.append(f"e-mail via {self.smtp_host}:{self.smtp_port}: {err}")
        return failures

    def _post(self, payload: dict) -> None:
        request = urllib.request.Request(
            self.webhook_url,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
            if response.status >= 300:
                raise ValueError(f"HTTP {response.status}")

    def _mail(self, subject: str, text: str) -> None:
        message = EmailMessage()
        message["Subject"], message["From"], message["To"] = subject, self.email_from, self.email_to
        message.set_content(text)
        with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=self.timeout_seconds) as smtp:
            if self.smtp_starttls:
                smtp.starttls()
            if self.smtp_user:
                smtp.login(self.smtp_user, self.smtp_password)
            smtp.send_message(message)
