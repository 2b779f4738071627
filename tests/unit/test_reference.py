import pytest

from hoist.errors import InvalidArgument
from hoist.image.reference import parse, parse_repository_and_tag


@pytest.mark.parametrize("text,full,fam", [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/user/app:v1", "docker.io/user/app:v1", "user/app:v1"),
    ("user/app", "docker.io/user/app:latest", "user/app:latest"),
    ("localhost:5000/a/b:c", "localhost:5000/a/b:c", "localhost:5000/a/b:c"),
    ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
    ("ghcr.io/o/r", "ghcr.io/o/r:latest", "ghcr.io/o/r:latest"),
    ("a.b-c_d__e", "docker.io/library/a.b-c_d__e:latest", "a.b-c_d__e:latest"),
])
def test_normalise(text, full, fam):
    ref = parse(text)
    assert str(ref) == full
    assert ref.familiar == fam


def test_digest_reference_has_no_default_tag():
    d = "sha256:" + "ab" * 32
    ref = parse(f"busybox@{d}")
    assert ref.tag is None and str(ref.digest) == d
    assert ref.familiar == f"busybox@{d}"


@pytest.mark.parametrize("bad", [
    "", "UPPER", "busybox:", ":tag", "a//b", "-a", "a-", "busybox@sha256:short",
    "busybox:" + "t" * 129, "a" * 256, "ab" * 32, "has space", "x/../y", "busybox@md5:" + "0" * 32,
])
def test_invalid(bad):
    with pytest.raises(InvalidArgument):
        parse(bad)


def test_uppercase_message():
    with pytest.raises(InvalidArgument, match="must be lowercase"):
        parse("docker.io/Library/Busybox")


def test_repository_and_tag():
    assert str(parse_repository_and_tag("busybox", "v1")) == "docker.io/library/busybox:v1"
    assert str(parse_repository_and_tag("busybox", "")) == "docker.io/library/busybox:latest"
    with pytest.raises(InvalidArgument):
        parse_repository_and_tag("busybox", "bad tag")
