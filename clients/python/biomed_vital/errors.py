"""The one exception type of the client, and its subclass for runs that fail."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence


class ApiError(Exception):
    """Any failure the API reported: a GraphQL error, a mutation's ``userErrors``, an HTTP error.

    ``code`` is the GraphQL ``extensions.code`` (``NOT_FOUND``, ``FORBIDDEN``, ``RATE_LIMITED``…) or
    the ``UserErrorCode`` (``INVALID``, ``DUPLICATE``…); ``field`` is the path of the input at fault
    (``["input", "topFraction"]``) when the API named one. ``errors`` keeps every error as the API
    sent it, ``status`` the HTTP status.
    """

    def __init__(
        self,
        message: str,
        code: Optional[str] = None,
        field: Optional[Sequence[str]] = None,
        *,
        errors: Optional[List[Dict[str, Any]]] = None,
        status: Optional[int] = None,
    ) -> None:
        super().__init__(f"{code}: {message}" if code else message)
        self.message = message
        self.code = code
        self.field: Optional[List[str]] = [str(p) for p in field] if field is not None else None
        self.errors: List[Dict[str, Any]] = errors or []
        self.status = status

    @classmethod
    def from_graphql_errors(cls, errors: List[Dict[str, Any]], status: Optional[int] = None) -> "ApiError":
        """The first error gives the message, code and field; all of them stay in ``errors``."""
        first = errors[0] if errors else {}
        extensions = first.get("extensions") or {}
        field = extensions.get("field")
        if isinstance(field, str):
            field = [field]
        message = "; ".join(str(e.get("message", "")) for e in errors) or "GraphQL error"
        return cls(message, extensions.get("code"), field, errors=errors, status=status)

    @classmethod
    def from_user_errors(cls, user_errors: List[Dict[str, Any]]) -> "ApiError":
        """A mutation's ``userErrors { field message code }``: nothing was written."""
        first = user_errors[0]
        message = "; ".join(str(e.get("message", "")) for e in user_errors)
        return cls(message, first.get("code"), first.get("field"), errors=user_errors)


class RunFailedError(ApiError):
    """A run ended FAILED. ``run`` is its final state and ``failures`` the items it gave up on
    (newest first, at most the first page)."""

    def __init__(self, run: Any, failures: List[Any]) -> None:
        reasons = "; ".join(f"{f.item_key}: {f.reason}" for f in failures[:5])
        detail = reasons or (run.last_error or "no failure recorded")
        super().__init__(f"{run.kind} run {run.id} FAILED ({run.failed} of {run.total} items failed): {detail}", "RUN_FAILED")
        self.run = run
        self.failures = failures
