"""The distribution spec's error codes, raised by the registry and rendered as OCI error bodies."""
from __future__ import annotations

import json


class APIError(Exception):
    """One spec error: HTTP ``status``, spec ``code``, a message and optional extra headers."""

    def __init__(self, status: int, code: str, message: str, detail: object = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail
        self.headers = headers or {}

    def body(self) -> bytes:
        err: dict[str, object] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            err["detail"] = self.detail
        return json.dumps({"errors": [err]}).encode()


def blob_unknown(digest: str) -> APIError:
    return APIError(404, "BLOB_UNKNOWN", "blob unknown to registry", {"digest": digest})


def upload_unknown() -> APIError:
    return APIError(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")


def upload_invalid(message: str = "blob upload invalid") -> APIError:
    return APIError(400, "BLOB_UPLOAD_INVALID", message)


def digest_invalid(message: str = "provided digest did not match uploaded content") -> APIError:
    return APIError(400, "DIGEST_INVALID", message)


def manifest_unknown(reference: str) -> APIError:
    return APIError(404, "MANIFEST_UNKNOWN", "manifest unknown", {"reference": reference})


def manifest_invalid(message: str) -> APIError:
    return APIError(400, "MANIFEST_INVALID", f"manifest invalid: {message}")


def manifest_blob_unknown(digest: str) -> APIError:
    return APIError(400, "MANIFEST_BLOB_UNKNOWN", "blob unknown to registry", {"digest": digest})


def name_invalid(name: str) -> APIError:
    return APIError(400, "NAME_INVALID", "invalid repository name", {"name": name})


def name_unknown(name: str) -> APIError:
    return APIError(404, "NAME_UNKNOWN", "repository name not known to registry", {"name": name})


def tag_invalid(tag: str) -> APIError:
    return APIError(400, "MANIFEST_INVALID", "invalid tag", {"tag": tag})


def size_invalid(message: str, status: int = 400) -> APIError:
    return APIError(status, "SIZE_INVALID", message)


def unsupported(message: str = "the operation is unsupported") -> APIError:
    return APIError(405, "UNSUPPORTED", message)


def unauthorized(challenge: str, message: str = "authentication required",
                 detail: object = None) -> APIError:
    return APIError(401, "UNAUTHORIZED", message, detail, {"WWW-Authenticate": challenge})


def denied(message: str = "requested access to the resource is denied") -> APIError:
    return APIError(403, "DENIED", message)
