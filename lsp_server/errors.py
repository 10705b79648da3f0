"""Domain errors, each carrying a message meant for the user."""

from __future__ import annotations

from pygls.exceptions import JsonRpcException


class FimlsError(Exception):
    """Base class for errors whose message is shown to the user as is."""


class ModelError(FimlsError):
    """The model file cannot be obtained, verified or loaded."""


class EngineUnavailable(FimlsError):
    """The inference server cannot be reached or gives no usable answer now (it may come back)."""


class EngineRequestError(FimlsError):
    """The inference server refused one request (the others may still work)."""


class TemplateError(FimlsError):
    """No usable FIM template for the loaded model."""


class DocumentError(FimlsError):
    """A request names a document or position that does not exist."""


class RequestFailed(JsonRpcException):
    """A valid request that cannot be served now (LSP ``RequestFailed``, -32803)."""

    CODE = -32803
    MESSAGE = "RequestFailed"
