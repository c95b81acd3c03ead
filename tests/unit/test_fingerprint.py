"""The build fingerprint (llbgen.fingerprint) and the up-to-date gate (llbgen.uptodate) without an engine.

The check against a real engine's image store is in tests/integration/test_image_build.py.
"""

from __future__ import annotations

import subprocess
import sys

from llbgen import llb
from llbgen.builder.options import CacheEntry, Output
from llbgen.cli.commands import COMMAND_MODULES
from llbgen.fingerprint import FINGERPRINT_LABEL, build_fingerprint, fingerprint_of, with_fingerprint
from llbgen.spec import load_spec
from llbgen.uptodate import store_only_tags
from stages import StageContext, layer_plan

BASE_DIGEST = "sha256:" + "1" * 64


def small_image(command: str = "echo hi > /x", label: str = "a") -> llb.State:
    base = llb.image("debian:bookworm", digest=BASE_DIGEST,
                     config={"config": {"Env": ["PATH=/usr/bin:/bin"], "Labels": {"from": "base"}}})
    state = base.run(command, name="step").root
    return state.with_config(labels=state.config.with_labels({"mine": label}).labels)


def test_pinned_value() -> None:
    # Graph digest + image config, under a versioned scheme: a change here changes every label.
    assert build_fingerprint(small_image()) == "sha256:850987a6c918d4f639d8bb661603f90c248577f708198b023dac0d326822c255"


def test_covers_the_graph_and_the_config() -> None:
    fingerprint = build_fingerprint(small_image())
    assert build_fingerprint(small_image()) == fingerprint  # deterministic
    assert build_fingerprint(small_image(command="echo bye > /x")) != fingerprint
    assert build_fingerprint(small_image(label="b")) != fingerprint
    moved = small_image().with_envs({"LANG": "C.UTF-8"})
    assert build_fingerprint(moved) != fingerprint


def test_label_holds_the_fingerprint_of_everything_else() -> None:
    image = small_image()
    labelled = with_fingerprint(image)
    labels = labelled.image_config()["config"]["Labels"]
    assert labels[FINGERPRINT_LABEL] == build_fingerprint(image)
    assert labels["mine"] == "a" and labels["from"] == "base"
    # Its own label does not count: labelling again changes nothing.
    assert build_fingerprint(labelled) == build_fingerprint(image)
    assert with_fingerprint(labelled).image_config() == labelled.image_config()
    assert fingerprint_of(labelled.image_config()["config"]) == build_fingerprint(image)
    assert fingerprint_of({"Labels": None}) == "" and fingerprint_of({}) == ""


def test_every_planned_image_carries_its_fingerprint() -> None:
    spec = load_spec(None, {"torch": "2.3.0", "cuda": "12.1"})
    merged = layer_plan(StageContext.create(spec), merge_supported=True)
    linear = layer_plan(StageContext.create(spec), merge_supported=False)
    for plan in (merged, linear):
        assert dict(plan.image.config.labels)[FINGERPRINT_LABEL] == build_fingerprint(plan.image)
    other_tag = layer_plan(StageContext.create(spec, image_tag="other:tag"), merge_supported=True)
    fingerprints = {dict(p.image.config.labels)[FINGERPRINT_LABEL] for p in (merged, linear, other_tag)}
    assert len(fingerprints) == 3


def test_only_a_store_only_build_can_be_up_to_date() -> None:
    load = Output("moby", {"name": "a:1,b:2"})
    assert store_only_tags([load], []) == ("a:1", "b:2")
    assert store_only_tags([Output("moby", {"name": "a:1"})], []) == ("a:1",)
    # A push, a file, an untagged image, a second output or a cache export need the solve.
    assert store_only_tags([Output("image", {"name": "r/a:1", "push": "true"})], []) == ()
    assert store_only_tags([Output("moby", {"name": "a:1", "push": "true"})], []) == ()
    assert store_only_tags([Output("moby", {})], []) == ()
    assert store_only_tags([Output.parse("type=docker,dest=/tmp/x.tar")], []) == ()
    assert store_only_tags([load, Output.parse("type=local,dest=/tmp/x")], []) == ()
    assert store_only_tags([load], [CacheEntry.parse("type=registry,ref=r/c", export=True)]) == ()
    assert store_only_tags([], []) == ()


def test_a_command_run_imports_only_its_module() -> None:
    code = ("import sys; from llbgen.cli import commands; commands.register(sys.argv[1:]); "
            "print(sorted(m for m in sys.modules if m.startswith('llbgen.cli.') and m.endswith('_cmd')))")

    def loaded(*argv: str) -> str:
        return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True).stdout.strip()

    assert loaded("build", "--torch", "2.3.0") == "['llbgen.cli.build_cmd']"
    assert loaded("plan") == "['llbgen.cli.build_cmd']"
    assert loaded("versions") == "['llbgen.cli.versions_cmd']"
    everything = str(sorted(f"llbgen.cli.{m}" for m in set(COMMAND_MODULES.values())))
    assert loaded() == everything and loaded("--help") == everything and loaded("no-such-command") == everything


def test_the_check_asks_no_engine_when_it_cannot_apply(tmp_path) -> None:
    from llbgen.builder.address import resolve_builder_address
    from llbgen.uptodate import check_up_to_date

    spec = load_spec(None, {"torch": "2.3.0", "cuda": "12.1"})
    nowhere = resolve_builder_address(f"docker://unix://{tmp_path}/no-engine.sock")
    pushed = [Output("image", {"name": "r/a:1", "push": "true"})]
    # Reaching the engine would raise BuilderUnavailable: these return before connecting.
    assert check_up_to_date(nowhere, spec, outputs=pushed, cache_to=[], network="sandbox") is None
    assert check_up_to_date(resolve_builder_address(f"unix://{tmp_path}/buildkitd.sock"), spec,
                            outputs=[Output("moby", {"name": "a:1"})], cache_to=[], network="sandbox") is None
