"""The distribution-spec v1.1 endpoints, on top of RegistryStorage and UploadManager."""
from __future__ import annotations

import json
import re
import time
import secrets

from ..digest import Digest
from ..errors import DigestMismatch, InvalidContent, SizeLimitExceeded
from . import errors as E
from .auth import Authorizer, Identity, NoAuth, Scope, TokenAuth
from .config import RegistryConfig
from .server import Request, Response
from .storage import RegistryStorage, parse_digest, valid_name, valid_tag
from .uploads import Upload, UploadManager

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
JSON = "application/json"

_NAME = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*"
_ROUTE = re.compile(r"^/v2/(?P<name>.+?)/(?:(?P<uploads>blobs/uploads(?:/(?P<uuid>[^/]*))?)|blobs/(?P<digest>[^/]+)"
                    r"|manifests/(?P<ref>[^/]+)|(?P<tags>tags/list)|referrers/(?P<subject>[^/]+))$")
_WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
_MEDIA_TYPE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$")


def _json(status: int, doc: object, headers: dict[str, str] | None = None) -> Response:
    return Response(status, {"Content-Type": JSON, **(headers or {})}, json.dumps(doc).encode())


def _paginate(items: list[str], req: Request, base: str) -> tuple[list[str], dict[str, str]]:
    last = req.q("last")
    n_text = req.q("n")
    if last:
        items = [i for i in items if i > last]
    headers: dict[str, str] = {}
    if n_text is not None:
        if not n_text.isdigit():
            raise E.APIError(400, "PAGINATION_NUMBER_INVALID", "invalid number of results requested")
        n = int(n_text)
        if len(items) > n:
            items = items[:n]
            if n:
                headers["Link"] = f'<{base}?n={n}&last={items[-1]}>; rel="next"'
    return items, headers


def _descriptor(d: object, what: str) -> tuple[Digest, int, str]:
    if not isinstance(d, dict):
        raise E.manifest_invalid(f"{what} is not a descriptor")
    mt, dg, size = d.get("mediaType"), d.get("digest"), d.get("size")
    if not isinstance(mt, str) or not _MEDIA_TYPE_RE.match(mt):
        raise E.manifest_invalid(f"{what} has an invalid mediaType")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise E.manifest_invalid(f"{what} has an invalid size")
    parsed = parse_digest(dg) if isinstance(dg, str) else None
    if parsed is None:
        raise E.manifest_invalid(f"{what} has an invalid digest")
    return parsed, size, mt


class Registry:
    def __init__(self, cfg: RegistryConfig, auth: Authorizer | None = None) -> None:
        self.cfg = cfg
        self.storage = RegistryStorage(cfg.root)
        self.uploads = UploadManager(self.storage.content, cfg.max_blob_size or None)
        self.auth: Authorizer = auth or NoAuth()

    # ------------------------------------------------------------------ dispatch

    def __call__(self, req: Request) -> Response:
        path = req.path
        if path == "/healthz":
            return _json(200, {"status": "ok"})
        if path in ("/token", "/token/") and isinstance(self.auth, TokenAuth):
            if req.method == "POST":
                import urllib.parse

                try:
                    text = req.body(64 << 10).decode("utf-8")
                except UnicodeDecodeError:
                    return _json(400, {"error": "invalid_request", "error_description": "form is not UTF-8"})
                status, doc = self.auth.password_grant(urllib.parse.parse_qs(text, keep_blank_values=True))
                return _json(status, doc, {"Cache-Control": "no-store"})
            if req.method not in ("GET", "HEAD"):
                raise E.unsupported(f"{req.method} not allowed on the token endpoint")
            return _json(200, self.auth.token_response(req.headers, req.query))
        if not path.startswith("/v2"):
            return _json(404, {"errors": [{"code": "NOT_FOUND", "message": "not found"}]})
        host = req.headers.get("host", "localhost")
        if path in ("/v2", "/v2/"):
            self._authorize(req, host, [])
            return _json(200, {})
        if self.cfg.read_only and req.method in _WRITE_METHODS:
            raise E.unsupported("the registry is read-only")
        if path in ("/v2/_catalog", "/v2/_catalog/"):
            self._authorize(req, host, [Scope("registry", "catalog", ("*",))])
            return self.catalog(req)
        m = _ROUTE.match(path)
        if m is None:
            return _json(404, {"errors": [{"code": "NOT_FOUND", "message": "no such endpoint"}]})
        name = m.group("name")
        if not valid_name(name):
            raise E.name_invalid(name)
        method = req.method
        if m.group("uploads") is not None:
            ident = self._authorize(req, host, [Scope("repository", name, ("pull", "push"))])
            uuid = m.group("uuid")
            if not uuid:
                if method == "POST":
                    return self.start_upload(req, name, ident)
            elif method == "PATCH":
                return self.patch_upload(req, name, uuid)
            elif method == "PUT":
                return self.put_upload(req, name, uuid)
            elif method == "GET":
                return self.upload_status(name, uuid)
            elif method == "DELETE":
                return self.cancel_upload(name, uuid)
            raise E.unsupported(f"{method} not allowed here")
        if m.group("digest") is not None:
            action = "delete" if method == "DELETE" else "pull"
            self._authorize(req, host, [Scope("repository", name, (action,))])
            d = self._digest(m.group("digest"))
            if method in ("GET", "HEAD"):
                return self.get_blob(req, name, d)
            if method == "DELETE":
                return self.delete_blob(name, d)
            raise E.unsupported(f"{method} not allowed here")
        if m.group("ref") is not None:
            action = {"PUT": "push", "DELETE": "delete"}.get(method, "pull")
            actions = ("pull", "push") if action == "push" else (action,)
            self._authorize(req, host, [Scope("repository", name, actions)])
            ref = m.group("ref")
            if method in ("GET", "HEAD"):
                return self.get_manifest(req, name, ref)
            if method == "PUT":
                return self.put_manifest(req, name, ref)
            if method == "DELETE":
                return self.delete_manifest(name, ref)
            raise E.unsupported(f"{method} not allowed here")
        self._authorize(req, host, [Scope("repository", name, ("pull",))])
        if method != "GET":
            raise E.unsupported(f"{method} not allowed here")
        if m.group("tags") is not None:
            return self.tags(req, name)
        return self.referrers(req, name, self._digest(m.group("subject")))

    def _authorize(self, req: Request, host: str, scopes: list[Scope]) -> Identity:
        ident = self.auth.authorize(req.headers, host, scopes)
        req.user = ident.user
        return ident

    @staticmethod
    def _digest(text: str) -> Digest:
        d = parse_digest(text)
        if d is None:
            raise E.digest_invalid(f"invalid digest {text!r}")
        return d

    # ------------------------------------------------------------------ blobs

    def get_blob(self, req: Request, name: str, d: Digest) -> Response:
        size = self.storage.blob_size(name, d)
        if size is None:
            raise E.blob_unknown(str(d))
        headers = {"Content-Type": "application/octet-stream", "Docker-Content-Digest": str(d),
                   "Accept-Ranges": "bytes", "ETag": f'"{d}"', "Cache-Control": "max-age=31536000"}
        rng = req.headers.get("range")
        if rng:
            span = _parse_range(rng, size)
            if span is None:
                raise E.APIError(416, "SIZE_INVALID",
                                 "requested range not satisfiable", headers={"Content-Range": f"bytes */{size}"})
            start, end = span
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            return Response(206, headers, file=self.storage.blob_path(d), offset=start, count=end - start + 1)
        return Response(200, headers, file=self.storage.blob_path(d), offset=0, count=size)

    def delete_blob(self, name: str, d: Digest) -> Response:
        if not self.storage.unlink_blob(name, d):
            raise E.blob_unknown(str(d))
        return Response(202, {"Docker-Content-Digest": str(d)})

    def _upload_headers(self, name: str, up_id: str, size: int) -> dict[str, str]:
        return {"Location": f"/v2/{name}/blobs/uploads/{up_id}", "Docker-Upload-UUID": up_id,
                "Range": f"0-{max(size - 1, 0)}" if size else "0-0"}

    def start_upload(self, req: Request, name: str, ident: Identity) -> Response:
        mount, source = req.q("mount"), req.q("from")
        if mount is not None:
            d = self._digest(mount)
            if source and valid_name(source) and self.auth.allowed(ident, Scope("repository", source, ("pull",))) \
                    and self.storage.blob_size(source, d) is not None:
                self.storage.link_blob(name, d)
                return Response(201, {"Location": f"/v2/{name}/blobs/{d}", "Docker-Content-Digest": str(d)})
        want = req.q("digest")
        if want is not None:
            d = self._digest(want)
            up = self.uploads.start(name)
            return self._finish(req, name, up.id, d)
        if req.has_body and req.headers.get("content-length", "0") not in ("", "0"):
            raise E.upload_invalid("a POST with a body needs ?digest=")
        up = self.uploads.start(name)
        return Response(202, self._upload_headers(name, up.id, 0))

    def _get(self, name: str, uuid: str) -> Upload:
        up = self.uploads.get(name, uuid)
        if up is None:
            raise E.upload_unknown()
        return up

    def _append(self, req: Request, up: Upload) -> None:
        limit = self.cfg.max_blob_size
        cl = req.headers.get("content-length", "")
        if limit and cl.isdigit() and up.size + int(cl) > limit:
            self.uploads.finish(up.id)
            raise E.size_invalid(f"blob larger than the limit of {limit} bytes", 413)
        try:
            for chunk in req.chunks():
                up.writer.write(chunk)
        except SizeLimitExceeded as e:
            self.uploads.finish(up.id)
            raise E.size_invalid(str(e), 413) from None
        except InvalidContent as e:
            self.uploads.finish(up.id)
            raise E.upload_invalid(str(e)) from None

    def _check_range(self, req: Request, name: str, up: Upload) -> None:
        cr = req.headers.get("content-range")
        if not cr:
            return
        text = cr.strip()
        if text.startswith("bytes"):
            text = text[5:].strip().lstrip("=").strip()
        text = text.split("/", 1)[0]
        start_s, sep, end_s = text.partition("-")
        if not sep or not start_s.isdigit() or not end_s.isdigit() or int(end_s) < int(start_s):
            raise E.APIError(416, "BLOB_UPLOAD_INVALID", "invalid Content-Range",
                             headers=self._upload_headers(name, up.id, up.size))
        start, end = int(start_s), int(end_s)
        cl = req.headers.get("content-length")
        if start != up.size or (cl is not None and cl.isdigit() and int(cl) != end - start + 1):
            raise E.APIError(416, "BLOB_UPLOAD_INVALID", "chunk out of order",
                             {"expected_start": up.size}, headers=self._upload_headers(name, up.id, up.size))

    def patch_upload(self, req: Request, name: str, uuid: str) -> Response:
        up = self._get(name, uuid)
        if not up.lock.acquire(blocking=False):
            raise E.APIError(416, "BLOB_UPLOAD_INVALID", "a chunk is already being written",
                             headers=self._upload_headers(name, up.id, up.size))
        try:
            self._check_range(req, name, up)
            self._append(req, up)
            up.updated = time.time()
            return Response(202, self._upload_headers(name, up.id, up.size))
        finally:
            up.lock.release()

    def put_upload(self, req: Request, name: str, uuid: str) -> Response:
        want = req.q("digest")
        if want is None:
            raise E.digest_invalid("PUT needs ?digest=")
        d = self._digest(want)
        return self._finish(req, name, uuid, d)

    def _finish(self, req: Request, name: str, uuid: str, d: Digest) -> Response:
        up = self._get(name, uuid)
        with up.lock:
            if req.has_body:
                self._check_range(req, name, up)  # a misplaced final chunk keeps the session
            try:
                if req.has_body:
                    self._append(req, up)
                if up.writer.digest != d:
                    raise E.digest_invalid()
                up.writer.commit()
            except DigestMismatch:
                raise E.digest_invalid() from None
            finally:
                self.uploads.finish(up.id)
        self.storage.link_blob(name, d)
        return Response(201, {"Location": f"/v2/{name}/blobs/{d}", "Docker-Content-Digest": str(d)})

    def upload_status(self, name: str, uuid: str) -> Response:
        up = self._get(name, uuid)
        return Response(204, self._upload_headers(name, up.id, up.size))

    def cancel_upload(self, name: str, uuid: str) -> Response:
        self._get(name, uuid)
        self.uploads.finish(uuid)
        return Response(204)

    # ------------------------------------------------------------------ manifests

    def _resolve(self, name: str, ref: str) -> Digest:
        if ":" in ref:
            return self._digest(ref)
        if not valid_tag(ref):
            raise E.tag_invalid(ref)
        d = self.storage.resolve_tag(name, ref)
        if d is None:
            if not self.storage.repo_exists(name):
                raise E.name_unknown(name)
            raise E.manifest_unknown(ref)
        return d

    def get_manifest(self, req: Request, name: str, ref: str) -> Response:
        d = self._resolve(name, ref)
        m = self.storage.manifest(name, d)
        if m is None:
            raise E.manifest_unknown(ref)
        accept = req.headers.get("accept", "")
        if accept and "vnd." in accept and m.media_type not in accept and "*/*" not in accept:
            raise E.APIError(404, "MANIFEST_UNKNOWN",
                             f"manifest media type {m.media_type} not in the Accept header",
                             {"reference": ref})
        headers = {"Content-Type": m.media_type, "Docker-Content-Digest": str(d), "ETag": f'"{d}"'}
        return Response(200, headers, file=self.storage.blob_path(d), offset=0, count=m.size)

    def put_manifest(self, req: Request, name: str, ref: str) -> Response:
        by_digest = ":" in ref
        want = self._digest(ref) if by_digest else None
        if not by_digest and not valid_tag(ref):
            raise E.tag_invalid(ref)
        data = req.body(self.cfg.max_manifest_size)
        ctype = req.headers.get("content-type", "").split(";", 1)[0].strip()
        try:
            doc = json.loads(data)
        except ValueError:
            raise E.manifest_invalid("not JSON") from None
        if not isinstance(doc, dict):
            raise E.manifest_invalid("not a JSON object")
        body_type = doc.get("mediaType")
        media_type = ctype or (body_type if isinstance(body_type, str) else "")
        if body_type is not None and body_type != media_type:
            raise E.manifest_invalid(f"mediaType {body_type!r} does not match Content-Type {media_type!r}")
        if media_type not in MANIFEST_TYPES + INDEX_TYPES:
            raise E.manifest_invalid(f"unsupported manifest media type {media_type!r}")
        if doc.get("schemaVersion") != 2:
            raise E.manifest_invalid("schemaVersion must be 2")
        d = Digest.of_bytes(data, want.algorithm if want else "sha256")
        if want is not None and d != want:
            raise E.digest_invalid(f"manifest digest {d} does not match {want}")
        if media_type in MANIFEST_TYPES:
            config_desc = doc.get("config")
            cd, _, config_type = _descriptor(config_desc, "config")
            self._require_blob(name, cd)
            layers = doc.get("layers")
            if not isinstance(layers, list):
                raise E.manifest_invalid("layers must be a list")
            for i, layer in enumerate(layers):
                ld, _, _ = _descriptor(layer, f"layers[{i}]")
                if not (isinstance(layer, dict) and layer.get("urls")):
                    self._require_blob(name, ld)
            artifact_type = doc.get("artifactType") or config_type
        else:
            children = doc.get("manifests")
            if not isinstance(children, list):
                raise E.manifest_invalid("manifests must be a list")
            for i, child in enumerate(children):
                md, _, _ = _descriptor(child, f"manifests[{i}]")
                if not self.storage.has_manifest(name, md):
                    raise E.manifest_blob_unknown(str(md))
            artifact_type = doc.get("artifactType")
        subject = None
        referrer = None
        if doc.get("subject") is not None:
            subject, _, _ = _descriptor(doc["subject"], "subject")
            referrer = {"mediaType": media_type, "digest": str(d), "size": len(data)}
            if isinstance(artifact_type, str) and artifact_type:
                referrer["artifactType"] = artifact_type
            if isinstance(doc.get("annotations"), dict):
                referrer["annotations"] = doc["annotations"]
        self.storage.put_manifest(name, data, media_type, d, subject, referrer)
        if not by_digest:
            self.storage.tag(name, ref, d)
        headers = {"Location": f"/v2/{name}/manifests/{d}", "Docker-Content-Digest": str(d)}
        if subject is not None:
            headers["OCI-Subject"] = str(subject)
        return Response(201, headers)

    def _require_blob(self, name: str, d: Digest) -> None:
        # Touch first, check second: a collection that started before this PUT then
        # sees a fresh mtime and spares the blob (see gc.py).
        self.storage.touch(d)
        if self.storage.blob_size(name, d) is None:
            raise E.manifest_blob_unknown(str(d))

    def delete_manifest(self, name: str, ref: str) -> Response:
        if ":" not in ref:
            if not valid_tag(ref):
                raise E.tag_invalid(ref)
            if not self.storage.delete_tag(name, ref):
                raise E.manifest_unknown(ref)
            return Response(202)
        d = self._digest(ref)
        if not self.storage.has_manifest(name, d):
            raise E.manifest_unknown(ref)
        subject = None
        try:
            doc = json.loads(self.storage.read_manifest(d))
            if isinstance(doc.get("subject"), dict):
                subject = parse_digest(str(doc["subject"].get("digest")))
        except (OSError, ValueError, AttributeError):
            pass
        self.storage.delete_manifest(name, d, subject)
        return Response(202)

    # ------------------------------------------------------------------ listings

    def tags(self, req: Request, name: str) -> Response:
        if not self.storage.repo_exists(name):
            raise E.name_unknown(name)
        items, headers = _paginate(self.storage.tags(name), req, f"/v2/{name}/tags/list")
        return _json(200, {"name": name, "tags": items}, headers)

    def catalog(self, req: Request) -> Response:
        items, headers = _paginate(self.storage.repositories(), req, "/v2/_catalog")
        return _json(200, {"repositories": items}, headers)

    def referrers(self, req: Request, name: str, subject: Digest) -> Response:
        found = self.storage.referrers(name, subject)
        headers = {"Content-Type": OCI_INDEX}
        want = req.q("artifactType")
        if want:
            found = [r for r in found if r.get("artifactType") == want]
            headers["OCI-Filters-Applied"] = "artifactType"
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": found}).encode()
        return Response(200, headers, body)


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    a, sep, b = spec.strip().partition("-")
    if not sep:
        return None
    if not a:
        if not b.isdigit() or int(b) == 0 or size == 0:
            return None
        n = min(int(b), size)
        return size - n, size - 1
    if not a.isdigit() or (b and not b.isdigit()):
        return None
    start = int(a)
    end = int(b) if b else size - 1
    if start >= size or end < start:
        return None
    return start, min(end, size - 1)


def new_secret() -> bytes:
    return secrets.token_bytes(32)


def build_registry(cfg: RegistryConfig) -> Registry:
    from .auth import Acl, BasicAuth, Htpasswd, TokenSigner

    auth: Authorizer
    acl = Acl(cfg.acl)
    if cfg.auth == "basic":
        auth = BasicAuth(Htpasswd(cfg.htpasswd), acl=acl)
    elif cfg.auth == "token":
        secret = bytes.fromhex(cfg.token_secret) if cfg.token_secret else new_secret()
        auth = TokenAuth(Htpasswd(cfg.htpasswd), TokenSigner(secret, "hoist-registry", cfg.token_ttl),
                         cfg.service, cfg.realm, "https" if cfg.tls_cert else "http", acl)
    else:
        auth = NoAuth()
    return Registry(cfg, auth)

