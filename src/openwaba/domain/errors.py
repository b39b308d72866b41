"""The one exception tree, and WhatsApp's error catalogue.

Every error openwaba raises derives from :class:`OpenwabaError`. Errors that a
client caused carry a WhatsApp error code; the HTTP faces decide how to render
them (Graph envelope, On-Premise envelope, flat 360dialog envelope).
"""

from __future__ import annotations

from dataclasses import dataclass

ERROR_DOCS_HREF = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"


@dataclass(frozen=True, slots=True)
class ErrorKind:
    """One row of WhatsApp's error catalogue."""

    code: int
    title: str
    http_status: int


# Codes openwaba produces, with the HTTP status WhatsApp answers them with.
CATALOGUE: dict[int, ErrorKind] = {
    kind.code: kind
    for kind in (
        ErrorKind(100, "Invalid parameter", 400),
        ErrorKind(131000, "Something went wrong", 500),
        ErrorKind(131008, "Required parameter is missing", 400),
        ErrorKind(131009, "Parameter value is not valid", 400),
        ErrorKind(131026, "Message Undeliverable", 400),
        ErrorKind(131047, "Re-engagement message", 400),
        ErrorKind(131051, "Unsupported message type", 400),
        ErrorKind(131056, "(Business Account, Consumer Account) pair rate limit hit", 400),
        ErrorKind(130429, "Rate limit hit", 400),
        ErrorKind(131053, "Media upload error", 400),
        ErrorKind(131016, "Service unavailable", 503),
        ErrorKind(131031, "Account has been locked", 403),
        ErrorKind(131042, "Business eligibility payment issue", 400),
        ErrorKind(131048, "Spam rate limit hit", 400),
        ErrorKind(131049, "This message was not delivered to maintain healthy ecosystem engagement.", 400),
        ErrorKind(131050, "User stopped marketing messages", 400),
        ErrorKind(131057, "Account in maintenance mode", 500),
        ErrorKind(130403, "Message not delivered: the business has blocked this user", 400),
        ErrorKind(130472, "User's number is part of an experiment", 400),
        ErrorKind(368, "Temporarily blocked for policies violations", 403),
        ErrorKind(132000, "Number of parameters does not match the expected number of params", 400),
        ErrorKind(132001, "Template name does not exist in the translation", 404),
        ErrorKind(132005, "Translated text too long", 400),
        ErrorKind(132007, "Message template character policy violated", 400),
        ErrorKind(132012, "Parameter format does not match format in the created template", 400),
        ErrorKind(132015, "Template is paused", 400),
        ErrorKind(132016, "Template is disabled", 400),
        ErrorKind(132018, "There was an issue with the parameters in your template", 400),
    )
}


class OpenwabaError(Exception):
    """Root of every error openwaba raises on purpose."""


class ConfigError(OpenwabaError):
    """The deployment's settings cannot work; raised at start-up."""


class StorageError(OpenwabaError):
    """The storage seam failed in a way the caller cannot fix."""


class ConflictError(OpenwabaError):
    """A uniqueness rule of the data model was broken (e.g. a duplicate id)."""


class StateError(OpenwabaError):
    """The request is well-formed but does not fit the current state (HTTP 409)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AuthError(OpenwabaError):
    """The request carries no credentials, or credentials that match nothing."""

    def __init__(self, message: str = "Invalid API key") -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(OpenwabaError):
    """The addressed resource does not exist for this caller."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RequestError(OpenwabaError):
    """A request openwaba will not carry out, described the way WhatsApp would."""

    def __init__(self, code: int, details: str, *, title: str | None = None, http_status: int | None = None) -> None:
        # Codes outside the catalogue come from Meta, which names them and picks the status.
        known = CATALOGUE.get(code)
        self.kind = ErrorKind(
            code,
            title or (known.title if known else "Unknown error"),
            http_status or (known.http_status if known else 400),
        )
        self.details = details
        super().__init__(f"(#{code}) {self.kind.title}: {details}")

    @property
    def code(self) -> int:
        return self.kind.code

    @property
    def title(self) -> str:
        return self.kind.title

    @property
    def http_status(self) -> int:
        return self.kind.http_status


def webhook_error(code: int, details: str) -> dict[str, object]:
    """The error object WhatsApp puts in webhooks (no `type`, `title` == `message`)."""
    kind = CATALOGUE[code]
    return {
        "code": code,
        "title": kind.title,
        "message": kind.title,
        "error_data": {"details": details},
        "href": ERROR_DOCS_HREF,
    }
