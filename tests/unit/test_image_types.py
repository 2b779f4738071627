import json

import pytest

from hoist.digest import Digest
from hoist.errors import InvalidContent, SizeLimitExceeded
from hoist.image import types as T

CFG = "sha256:" + "a" * 64
LAYER = "sha256:" + "b" * 64


def manifest(**over):
    doc = {"schemaVersion": 2, "mediaType": T.OCI_MANIFEST,
           "config": {"mediaType": T.OCI_CONFIG, "digest": CFG, "size": 10},
           "layers": [{"mediaType": T.OCI_LAYER_GZIP, "digest": LAYER, "size": 20}]}
    doc.update(over)
    return json.dumps(doc).encode()


def test_parse_manifest():
    m = T.Manifest.parse(manifest())
    assert m.config.digest == Digest.parse(CFG)
    assert m.layers[0].size == 20


def test_duplicate_keys_rejected():
    raw = b'{"schemaVersion": 2, "schemaVersion": 2, "config": {}, "layers": []}'
    with pytest.raises(InvalidContent, match="duplicate"):
        T.Manifest.parse(raw)


def test_oversized_manifest():
    with pytest.raises(SizeLimitExceeded):
        T.Manifest.parse(b" " * (4 * 1024 * 1024 + 1))


@pytest.mark.parametrize("bad", [
    manifest(schemaVersion=1),
    manifest(layers="nope"),
    manifest(config={"mediaType": T.OCI_CONFIG, "digest": "sha256:xyz", "size": 1}),
    manifest(config={"mediaType": T.OCI_CONFIG, "digest": CFG, "size": -1}),
    manifest(config={"mediaType": T.OCI_CONFIG, "digest": CFG, "size": True}),
    manifest(layers=[{"mediaType": "text/html", "digest": LAYER, "size": 1}]),
    b"not json", b"[]",
])
def test_bad_manifests(bad):
    with pytest.raises(InvalidContent):
        T.Manifest.parse(bad)


def test_config_and_chain_ids():
    d1, d2 = Digest("sha256", "1" * 64), Digest("sha256", "2" * 64)
    cfg = T.ImageConfig.parse(json.dumps({"rootfs": {"type": "layers", "diff_ids": [str(d1), str(d2)]}}).encode())
    chain = T.chain_ids(cfg.diff_ids)
    assert chain[0] == d1
    assert chain[1] == Digest.of_bytes(f"{d1} {d2}".encode())
    with pytest.raises(InvalidContent):
        T.ImageConfig.parse(b'{"rootfs": {"diff_ids": ["sha256:bad"]}}')
