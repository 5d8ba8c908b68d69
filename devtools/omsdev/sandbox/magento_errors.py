"""Magento's REST error shape: ``{"message": "<phrase with %placeholders>", "parameters": {...}}``.

Magento returns the untranslated phrase plus its parameters (for example the 401 body's
``%resources``), and ``errors`` for aggregate validation failures; the sandbox does the same.
"""

from __future__ import annotations

from typing import Any

ENTITY_NOT_FOUND = "The entity that was requested doesn't exist. Verify the entity and try again."


class MagentoError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        parameters: dict[str, Any] | list[Any] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.parameters = parameters
        self.errors = errors

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message}
        if self.parameters is not None:
            out["parameters"] = self.parameters
        if self.errors is not None:
            out["errors"] = self.errors
        return out


def not_found() -> MagentoError:
    return MagentoError(404, ENTITY_NOT_FOUND)


def required(field: str) -> MagentoError:
    """Magento's webapi message for a missing required input."""
    return MagentoError(400, '"%fieldName" is required. Enter and try again.', {"fieldName": field})


def no_such_entity(field: str, value: Any) -> MagentoError:
    return MagentoError(
        404, "No such entity with %fieldName = %fieldValue", {"fieldName": field, "fieldValue": value}
    )


def document_validation(document: str, messages: list[str]) -> MagentoError:
    """ShipOrder/InvoiceOrder/RefundOrder join their validator messages under one heading."""
    return MagentoError(400, f"{document} Document Validation Error(s):\n" + "\n".join(messages))
