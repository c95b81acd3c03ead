"""Image references: Docker's distribution/reference grammar, one parser for every name llbgen is given."""

from __future__ import annotations

import pytest

from llbgen.llb.source import normalize_image_ref
from llbgen.reference import check_reference, check_tag, parse_reference

DIGEST = "sha256:" + "0123456789abcdef" * 4

# Accepted by Docker's grammar (distribution/reference).
VALID = [
    "ubuntu",
    "ubuntu:22.04",
    "nvidia/cuda:12.1.0-cudnn8-devel-ubuntu22.04",
    "127.0.0.1:5000/llbgen-test/debian:bookworm",
    "localhost/x",
    "localhost:5000/a/b/c:TAG_with.Upper-1",
    "Registry.Example.com/team/pytorch:2.3.0",  # the host may have capitals, the path may not
    "[::1]:5000/x:1",
    "a__b/c-d---e.f_g:1",
    "x" * 200,
    f"ubuntu@{DIGEST}",
    f"ubuntu:22.04@{DIGEST}",
    "x:" + "t" * 128,
]

# Refused by `docker tag` (Docker 26.1), but for UPPER/x:1: Docker takes "UPPER" for a registry host;
# llbgen refuses the name and says how a registry is written.
INVALID = [
    ("", "empty"),
    ("UPPER/x:1", "must be lowercase (for a registry, write 'UPPER' as host.domain or host:port)"),
    ("Ubuntu", "must be lowercase"),
    ("a::b@@", "digest"),
    ("a b", "space or a control character"),
    ("x\ntouch /tmp/pwned", "control character"),
    ("x\x1b[31m", "control character"),
    ("local://x", "scheme"),
    ("https://example.com/x.tar", "scheme"),
    ("docker-image://ubuntu", "scheme"),
    ("x:", "tag"),
    ("x:-a", "tag"),
    ("x:" + "t" * 129, "tag"),
    ("x@sha256:abc", "digest"),
    ("x@md5:" + "0" * 32, "digest"),
    ("-x", "repository name"),
    ("x-", "repository name"),
    ("a/", "repository name"),
    ("a//b", "repository name"),
    ("a..b", "repository name"),
    ("host:port/x", "registry host"),
    ("-bad.example.com/x", "registry host"),
    ("reg.example.com:5000/", "empty"),
    ("x" * 256, "longer than 255"),
]


@pytest.mark.parametrize("ref", VALID)
def test_docker_accepts(ref: str) -> None:
    assert check_reference(ref) == ref


@pytest.mark.parametrize(("ref", "why"), INVALID)
def test_docker_refuses(ref: str, why: str) -> None:
    with pytest.raises(ValueError, match="is not an image reference") as err:
        check_reference(ref)
    assert why in str(err.value)
    assert "\n" not in str(err.value) and "\x1b" not in str(err.value)  # shown with repr, never raw


def test_parts() -> None:
    ref = parse_reference(f"127.0.0.1:5000/llbgen-test/debian:bookworm@{DIGEST}")
    assert (ref.domain, ref.path, ref.tag, ref.digest) == ("127.0.0.1:5000", "llbgen-test/debian", "bookworm", DIGEST)
    assert ref.name == "127.0.0.1:5000/llbgen-test/debian"
    plain = parse_reference("nvidia/cuda:12.1.0")  # "nvidia" has no '.' or ':' and is not localhost: a path
    assert (plain.domain, plain.path, plain.tag, plain.digest) == (None, "nvidia/cuda", "12.1.0", None)
    assert parse_reference("localhost:5000").tag == "5000"  # Docker reads it as repository localhost, tag 5000


def test_a_tag_has_no_digest() -> None:
    assert check_tag("reg.example.com/x:1") == "reg.example.com/x:1"
    with pytest.raises(ValueError, match="has a digest"):
        check_tag(f"x@{DIGEST}")


@pytest.mark.parametrize(
    ("ref", "normalized"),
    [
        ("debian", "docker.io/library/debian:latest"),
        ("docker.io/debian:12", "docker.io/library/debian:12"),
        ("index.docker.io/nvidia/cuda:12.1.0", "docker.io/nvidia/cuda:12.1.0"),
        (f"debian@{DIGEST}", f"docker.io/library/debian@{DIGEST}"),
        ("127.0.0.1:5000/x", "127.0.0.1:5000/x:latest"),
    ],
)
def test_llb_sources_use_the_same_parser(ref: str, normalized: str) -> None:
    assert normalize_image_ref(ref) == normalized


@pytest.mark.parametrize("ref", ["a::b@@", "local://x", "UPPER/x"])
def test_llb_sources_refuse_what_docker_refuses(ref: str) -> None:
    with pytest.raises(ValueError, match="is not an image reference"):
        normalize_image_ref(ref)
