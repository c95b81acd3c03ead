#!/usr/bin/env python3
"""llbgen against the Dockerfile ways, on the same engine, from fresh build caches; prints tables.

    .venv/bin/python benchmarks/run.py [--scenarios 1,2,3,4,5] [--real-torch] [--parallel 2]

Contenders (same spec, same bases, same loopback mirrors, same CA secret, ``--network host``):

(a) ``llbgen build`` per variant;
(b) llbgen's exported Dockerfile (``llbgen export-dockerfile``) built by its ``build.sh`` (buildx);
(c) the seed's linear layout (``benchmarks/seed_dockerfile.py``) built by ``docker buildx build``.

Before each contender's part of a scenario the engine's build cache is emptied with
``docker builder prune -af`` (the apt/pip cache mounts are build cache too: every contender
starts without them) and the benchmark's images are removed. Scenarios:

1. cold matrix, 2 bases × 2 torch builds: wall time, bytes added to the build cache (BuildKit
   DiskUsage records created during the builds), unique bytes in the registry of the four
   pushed images (distinct blobs of their manifests);
2. switch the base (same torch): time, share of the non-base layer bytes already in the first image;
3. switch torch (same base): time, layers not in the first image and their bytes;
4. no-op rebuild: time;
5. builder handoff: build on engine A exporting a registry cache (mode=max), then on engine B
   (second dockerd, ``.ci/start-second-dockerd.sh``) importing it: B's time against cold; then,
   from an emptied cache again, B builds the other base's variant from the same cache (what
   does not depend on the base is imported, not rebuilt).

Scenarios 2–4 share one sequence per contender: cold build of (base 1, torch 1), rebuild it
(4), then (base 1, torch 2) (3), then (base 2, torch 1) (2).

The torch axis is the torch 2.13.0 CPU wheel kept on this machine (served by a loopback PEP 503
index) vs the same plus one small extra pip package (``--extra-package``, default tabulate).
``--real-torch`` replaces it with two real torch releases from PyPI through the CA-mounted
proxy (``--real-torch-versions``, default 2.4.1,2.5.1): several GB of downloads per contender;
with one release (``--real-torch-versions 2.4.1``) the axis is that release vs the same plus
the extra package, which halves the disk the Dockerfile contenders need.

Bases: ``llbgen-test/debian:bookworm`` and ``llbgen-test/cuda-standin:bookworm`` (the image tests'),
each with one small benchmark layer on top, pushed to the local registry as
``127.0.0.1:5000/llbgen-bench/base-*`` — so the benchmark's cache keys never meet those of the
tests that share the engine, and engine B can pull them. Everything the benchmark tags or
pushes is removed at the end (registry manifests deleted; blobs wait for the registry's GC).
Needs root (the stand-in installer cache, the docker socket), the engine of .ci/setup-host.sh
and the registry on 127.0.0.1:5000.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import report  # noqa: E402
from benchmarks.contenders import (  # noqa: E402
    PYPI,
    Base,
    BuildResult,
    Contender,
    ExportedDockerfile,
    Inputs,
    Llbgen,
    LoadSampler,
    SeedLayout,
    TorchBuild,
    Variant,
    exportable,
    run_jobs,
)
from benchmarks.engine import (  # noqa: E402
    MAIN,
    REGISTRY,
    Engine,
    Manifest,
    Registry,
    engine_b,
    load_average,
    machine_facts,
    unique_bytes,
)

HOST_CA = "/etc/ssl/certs/ca-certificates.crt"
TEST_BASE = "llbgen-test/debian:bookworm"
MIRROR_PORT = 47871
ALWAYS_SOLVE = "a --always-solve"
LABELS = {"a": "(a) llbgen build", ALWAYS_SOLVE: "(a) llbgen build --always-solve (no up-to-date check)",
          "b": "(b) exported Dockerfile", "c": "(c) seed layout"}


class Bench:
    """One invocation: the mirrors, bases, contenders, and everything measured."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.workdir = Path(tempfile.mkdtemp(prefix="llbgen-bench-"))
        self.registry = Registry()
        self.engines: list[Engine] = [MAIN]
        self.run_id = time.strftime("%Y%m%d%H%M%S")
        self.results: dict[str, dict] = {}
        self.lines: list[str] = []
        self.bases: list[Base] = []
        self.base_manifests: dict[str, Manifest] = {}
        self.torch_axis: list[TorchBuild] = []
        self.contenders: list[Contender] = []
        self.mirror = None

    # ------------------------------------------------------------------ output

    def emit(self, lines: list[str]) -> None:
        self.lines += lines
        print("\n".join(lines), flush=True)

    def log(self, text: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    # ------------------------------------------------------------------ setup

    def setup(self) -> None:
        from tests.integration import mirrors

        self.log(f"work directory {self.workdir}")
        installer = mirrors.standin_installer()
        wheels = mirrors.torch_wheel_dir()
        self.mirror = mirrors.MirrorServer(wheels, [installer.path], preferred_port=MIRROR_PORT).start()
        self.inputs = Inputs(
            miniconda_url=self.mirror.miniconda_url, installer_name=installer.name, installer_sha256=installer.sha256,
            torch_index_url=self.mirror.simple_url, pip_index_url=PYPI, ca_cert=HOST_CA,
        )
        cuda = mirrors.ensure_cuda_standin(TEST_BASE)
        self.bases = [self.bench_base("b1", TEST_BASE, "Debian bookworm"),
                      self.bench_base("b2", cuda, "CUDA stand-in (Debian files, CUDA env)")]
        if self.args.real_torch:
            versions = [v.strip() for v in self.args.real_torch_versions.split(",") if v.strip()]
            if len(versions) == 1:  # one release: it, then it plus the small extra package
                self.torch_axis = [TorchBuild("t1", versions[0], torch_index_url=PYPI),
                                   TorchBuild("t2", versions[0], (self.args.extra_package,), torch_index_url=PYPI)]
            else:
                self.torch_axis = [TorchBuild("t1", versions[0], torch_index_url=PYPI),
                                   TorchBuild("t2", versions[1], torch_index_url=PYPI)]
        else:
            self.torch_axis = [TorchBuild("t1", "2.13.0"), TorchBuild("t2", "2.13.0", (self.args.extra_package,))]
        ok_b, why_b = exportable()
        make = {"a": lambda: Llbgen("a", LABELS["a"], self.inputs, self.workdir),
                "b": lambda: ExportedDockerfile("b", LABELS["b"], self.inputs, self.workdir, ok_b, why_b),
                "c": lambda: SeedLayout("c", LABELS["c"], self.inputs, self.workdir)}
        self.contenders = [make[key]() for key in self.args.contenders]

    def bench_base(self, key: str, source: str, label: str) -> Base:
        """``source`` plus one small layer, as 127.0.0.1:5000/llbgen-bench/base-KEY, built on A and pushed."""
        ref = f"{REGISTRY}/llbgen-bench/base-{key}:bookworm"
        ctx = self.workdir / "bases" / key
        ctx.mkdir(parents=True)
        marker = ctx / "llbgen-bench-base"
        marker.write_text(f"llbgen benchmark base {key}, from {source}\n")
        os.utime(marker, (1_700_000_000, 1_700_000_000))  # the same layer every run
        (ctx / "Dockerfile").write_text(f"FROM {source}\nCOPY llbgen-bench-base /etc/llbgen-bench-base\n")
        MAIN.docker("buildx", "build", "--provenance=false", "--load", "-t", ref, str(ctx), timeout=600)
        MAIN.push(ref, timeout=600)
        self.registry.pushed.add(ref)
        self.base_manifests[key] = self.registry.manifest(ref)
        return Base(key, ref, f"{label} + bench layer")

    def variant(self, base: int, torch: int) -> Variant:
        return Variant(self.bases[base], self.torch_axis[torch], builder_image=self.bases[0].ref)

    def fresh(self, engine: Engine, contender: Contender, variants: list[Variant], *, bases_too: bool = False) -> None:
        """Empty ``engine``'s build cache and remove ``contender``'s images (and the bases, on engine B)."""
        engine.remove_images([contender.tag(v) for v in variants])
        if bases_too:
            engine.remove_images([b.ref for b in self.bases])
        self.log(f"{engine.name}: docker builder prune -af: {engine.prune_build_cache()}")

    def push_all(self, contender: Contender, results: list[BuildResult]) -> tuple[float, dict[str, Manifest]]:
        seconds, manifests = 0.0, {}
        for r in results:
            if r.ok:
                seconds += MAIN.push(r.tag)
                self.registry.pushed.add(r.tag)
                manifests[r.variant] = self.registry.manifest(r.tag)
        return seconds, manifests

    def build(self, jobs: list, parallel: int = 1) -> tuple[float, list[BuildResult], float | None]:
        """Run builds; (wall seconds, results, mean 1-minute load average meanwhile)."""
        sampler = LoadSampler()
        wall, results = run_jobs(jobs, parallel, self.args.build_timeout, sampler)
        return wall, results, sampler.mean

    def skip(self, contender: Contender) -> bool:
        if not contender.available:
            self.log(f"{contender.label}: skipped ({contender.why_not})")
        return not contender.available

    # ------------------------------------------------------------------ scenario 1

    def cold_matrix(self) -> None:
        variants = [self.variant(b, t) for b in range(2) for t in range(2)]
        rows: dict[str, dict] = {}
        per_variant: dict[str, dict] = {}
        for c in self.contenders:
            if self.skip(c):
                rows[c.key] = {"wall": c.why_not}
                continue
            retried = ""
            for attempt in range(1 + self.args.retries):
                self.fresh(MAIN, c, variants)
                jobs = [c.job(v, MAIN, log_name=f"-s1-{attempt}") for v in variants]
                self.log(f"scenario 1, {c.label}: {len(jobs)} builds, {self.args.parallel} at a time")
                t0 = time.time()
                wall, results, load = self.build(jobs, self.args.parallel)
                cache = MAIN.cache_bytes_since(t0)
                failed = [r for r in results if not r.ok]
                if not failed:
                    break
                # A failure outside the recipe (e.g. another job on the shared engine removing content
                # mid-export) spoils the whole measurement: run the contender's part again, from scratch.
                retried = f" (attempt {attempt + 2}; attempt {attempt + 1} failed: {failed[0].variant}: {failed[0].error[:160]})"
                self.log(f"scenario 1, {c.label}: {failed[0].variant} failed: {failed[0].error}")
            push_s, manifests = self.push_all(c, results)
            row = {"wall": wall if not failed else f"FAILED: {failed[0].variant}: {failed[0].error}",
                   "cache": cache, "registry": unique_bytes(list(manifests.values())) if not failed else "—",
                   "steps": f"{sum(r.steps_run for r in results)}/{sum(r.steps_cached for r in results)}",
                   "push": push_s, "load": load, "note": retried.strip() if not failed else ""}
            rows[c.key] = row
            per_variant[c.key] = {r.variant: r.seconds if r.ok else "FAILED" for r in results}
            self.results.setdefault("1", {})[c.key] = {**row, "builds": [asdict(r) | {"log": str(r.log)} for r in results],
                                                       "manifests": {k: asdict(m) for k, m in manifests.items()}}
            MAIN.remove_images([c.tag(v) for v in variants])
            self.log(f"scenario 1, {c.label}: {row}")
        axis = "; ".join(f"{t.key} = {t.label}" for t in self.torch_axis)
        bases = "; ".join(f"{b.key} = {b.label}" for b in self.bases)
        self.emit(report.table(
            f"Scenario 1: cold matrix, 2 bases × 2 torch builds ({self.args.parallel} builds at a time)", rows, LABELS, [
                report.Column("wall", "wall time", report.seconds, True),
                report.Column("cache", "build cache added (records created meanwhile, by any job)", report.size, True),
                report.Column("registry", "unique registry bytes (4 images)", report.size, True),
                report.Column("steps", "RUN steps run/cached"),
                report.Column("push", "push time (not in wall)", report.seconds),
                report.Column("load", "mean load", report.load),
            ], note=f"Bases: {bases}. Torch axis: {axis}." + "".join(
                f" {LABELS[k]}: {r['note']}." for k, r in rows.items() if r.get("note"))))
        self.matrix_sharing(variants)
        names = [v.name for v in variants]
        vrows = {k: dict(v) for k, v in per_variant.items()}
        self.emit(report.table("Scenario 1: seconds per build (concurrent builds overlap)", vrows, LABELS,
                               [report.Column(n, n, report.seconds) for n in names]))

    def matrix_sharing(self, variants: list[Variant]) -> None:
        """From the four pushed manifests: how much of (base 2, torch 1) is already in (base 1, torch 1)."""
        first, other = variants[0], variants[2]
        rows: dict[str, dict] = {}
        for key, result in self.results.get("1", {}).items():
            manifests = result.get("manifests", {})
            if first.name not in manifests or other.name not in manifests:
                continue
            rows[key] = base_switch_reuse(manifests[first.name]["layers"], manifests[other.name]["layers"],
                                          self.base_manifests[other.base.key].layers)
        self.results.setdefault("1", {})["sharing"] = rows
        self.emit(report.table(f"Scenario 1: {other.name}'s layers already in {first.name} (from the pushed manifests)",
                               rows, LABELS, [
            report.Column("nonbase", "non-base bytes", report.size),
            report.Column("reused", f"already in {first.name}", report.size),
            report.Column("share", "share reused", report.percent),
            report.Column("layers", "non-base layers reused"),
        ], note="The base switch of scenario 2, read from the matrix's own images (compressed sizes in the registry)."))

    # ------------------------------------------------------------------ scenarios 2, 3, 4

    def sequence(self, wanted: set[int]) -> None:
        x, y, z = self.variant(0, 0), self.variant(0, 1), self.variant(1, 0)
        s2, s3, s4 = {}, {}, {}
        for c in self.contenders:
            if self.skip(c):
                for rows in (s2, s3, s4):
                    rows[c.key] = {"time": c.why_not}
                continue
            self.fresh(MAIN, c, [x, y, z])
            self.log(f"scenarios 2-4, {c.label}: cold {x.name}")
            _, (cold,), cold_load = self.build([c.job(x, MAIN, log_name="-cold")])
            record: dict[str, object] = {"cold": asdict(cold) | {"log": str(cold.log)}}
            self.results.setdefault("2-4", {})[c.key] = record
            if not cold.ok:
                for rows in (s2, s3, s4):
                    rows[c.key] = {"time": f"FAILED (cold build): {cold.error}"}
                continue
            first = self._push(cold)
            if 4 in wanted:
                self.log(f"scenario 4, {c.label}: rebuild {x.name}")
                s4[c.key], record["noop"] = self._noops(c, x, cold, cold_load)
                if c.key == "a":
                    self.log(f"scenario 4, {c.label} --always-solve: rebuild {x.name}")
                    s4[ALWAYS_SOLVE], record["noop_always_solve"] = self._noops(c, x, cold, cold_load,
                                                                                "--always-solve")
            if 3 in wanted:
                self.log(f"scenario 3, {c.label}: {y.name}")
                _, (sw,), load = self.build([c.job(y, MAIN, log_name="-torch")])
                row: dict[str, object] = {"time": sw.seconds if sw.ok else f"FAILED: {sw.error}",
                                          "steps": f"{sw.steps_run}/{sw.steps_cached}", "load": load}
                if sw.ok:
                    m = self._push(sw)
                    old = {d for d, _ in first.layers}
                    new = [(d, s) for d, s in m.layers if d not in old]
                    row |= {"rebuilt": f"{len(new)} of {len(m.layers)}", "new_bytes": sum(s for _, s in new)}
                    record["torch_manifest"] = asdict(m)
                s3[c.key] = row
                record["torch"] = asdict(sw) | {"log": str(sw.log)}
            if 2 in wanted:
                self.log(f"scenario 2, {c.label}: {z.name}")
                _, (sb,), load = self.build([c.job(z, MAIN, log_name="-base")])
                row = {"time": sb.seconds if sb.ok else f"FAILED: {sb.error}", "steps": f"{sb.steps_run}/{sb.steps_cached}",
                       "load": load}
                if sb.ok:
                    m = self._push(sb)
                    row |= base_switch_reuse(first.layers, m.layers, self.base_manifests[z.base.key].layers)
                    record["base_manifest"] = asdict(m)
                s2[c.key] = row
                record["base"] = asdict(sb) | {"log": str(sb.log)}
            MAIN.remove_images([c.tag(v) for v in (x, y, z)])
        self.results.setdefault("2-4", {})["tables"] = {"2": s2, "3": s3, "4": s4}
        if 2 in wanted:
            self.emit(report.table(f"Scenario 2: switch the base ({x.name} built, then {z.name})", s2, LABELS, [
                report.Column("time", "time", report.seconds, True),
                report.Column("nonbase", "non-base bytes", report.size),
                report.Column("reused", "already in the first image", report.size),
                report.Column("share", "share reused", report.percent),
                report.Column("layers", "non-base layers reused"),
                report.Column("steps", "RUN steps run/cached"),
                report.Column("load", "mean load", report.load),
            ], note="Non-base layers: the layers of the new image above its base's own (compressed sizes in the registry)."))
        if 3 in wanted:
            self.emit(report.table(f"Scenario 3: switch torch ({x.name} built, then {y.name})", s3, LABELS, [
                report.Column("time", "time", report.seconds, True),
                report.Column("rebuilt", "layers not in the first image"),
                report.Column("new_bytes", "bytes of those layers", report.size, True),
                report.Column("steps", "RUN steps run/cached"),
                report.Column("load", "mean load", report.load),
            ]))
        if 4 in wanted:
            self.emit(report.table(f"Scenario 4: no-op rebuild of {x.name} (median of {self.args.noop_repeats})", s4, LABELS, [
                report.Column("time", "time", report.short_seconds, True),
                report.Column("range", "min–max"),
                report.Column("cold", "its cold build", report.seconds, True),
                report.Column("steps", "RUN steps run/cached"),
                report.Column("load", "mean load (rebuild)", report.load),
                report.Column("cold_load", "mean load (cold)", report.load),
            ]))

    def _noops(self, c: Contender, x: Variant, cold: BuildResult, cold_load: float | None,
               *flags: str) -> tuple[dict[str, object], list[dict[str, object]]]:
        """Scenario 4's row for ``c``: ``noop_repeats`` rebuilds of ``x`` right after its cold build, and their records."""
        runs = []
        for i in range(self.args.noop_repeats):
            job = c.job(x, MAIN, log_name=f"-noop{i}{''.join(flags)}")
            job.argv += list(flags)
            runs.append(self.build([job]))
        noops = [r for _, (r,), _ in runs]
        loads = [load for _, _, load in runs if load is not None]
        failed = next((r for r in noops if not r.ok), None)
        times = sorted(r.seconds for r in noops)
        row = {"time": statistics.median(times) if failed is None else f"FAILED: {failed.error}",
               "range": f"{times[0]:.2f}–{times[-1]:.2f} s ({len(times)} runs)", "cold": cold.seconds,
               "steps": f"{noops[-1].steps_run}/{noops[-1].steps_cached}",
               "load": statistics.mean(loads) if loads else None, "cold_load": cold_load}
        return row, [asdict(r) | {"log": str(r.log)} for r in noops]

    def _push(self, result: BuildResult) -> Manifest:
        MAIN.push(result.tag)
        self.registry.pushed.add(result.tag)
        return self.registry.manifest(result.tag)

    # ------------------------------------------------------------------ scenario 5

    def handoff(self) -> None:
        engine, why = engine_b(self.args.start_engine_b)
        x, z = self.variant(0, 0), self.variant(1, 0)
        rows: dict[str, dict] = {}
        if engine is None:
            for c in self.contenders:
                rows[c.key] = {"b": f"not available: {why}"}
        else:
            self.engines.append(engine)
            self.emit([f"Engine B: Docker Engine {engine.version()} at {engine.host}, {engine.storage()}", ""])
            for c in self.contenders:
                if self.skip(c):
                    rows[c.key] = {"b": c.why_not}
                    continue
                cache = f"{REGISTRY}/llbgen-bench/cache-{c.key}:{self.run_id}"
                self.registry.pushed.add(cache)
                self.fresh(MAIN, c, [x])
                self.log(f"scenario 5, {c.label}: {x.name} on A with --cache-to {cache}")
                _, (on_a,), load_a = self.build([c.job(x, MAIN, cache_to=f"type=registry,ref={cache},mode=max",
                                                        log_name="-s5")])
                MAIN.remove_images([c.tag(x)])
                if not on_a.ok:
                    rows[c.key] = {"a": f"FAILED: {on_a.error}"}
                    continue
                self.fresh(engine, c, [x], bases_too=True)
                self.log(f"scenario 5, {c.label}: {x.name} on B with --cache-from {cache}")
                _, (on_b,), load_b = self.build([c.job(x, engine, cache_from=f"type=registry,ref={cache}",
                                                        log_name="-s5")])
                # The same cache, another variant: B builds the other base's image from A's cache
                # of the first. What does not depend on the base should come from the cache.
                self.fresh(engine, c, [x, z], bases_too=True)
                self.log(f"scenario 5, {c.label}: {z.name} on B with --cache-from {cache} (made for {x.name})")
                _, (other,), _ = self.build([c.job(z, engine, cache_from=f"type=registry,ref={cache}",
                                                   log_name="-s5-other")])
                engine.remove_images([c.tag(x), c.tag(z)] + [b.ref for b in self.bases])
                cold = self.results.get("2-4", {}).get(c.key, {}).get("cold", {})
                cold_s = cold.get("seconds") if cold.get("ok") else None
                rows[c.key] = {"a": on_a.seconds, "b": on_b.seconds if on_b.ok else f"FAILED: {on_b.error}",
                               "b_over_a": on_b.seconds / on_a.seconds if on_b.ok else "—",
                               "b_over_cold": (on_b.seconds / cold_s) if (on_b.ok and cold_s) else "—",
                               "steps": f"{on_b.steps_run}/{on_b.steps_cached}",
                               "other": other.seconds if other.ok else f"FAILED: {other.error}",
                               "other_steps": f"{other.steps_run}/{other.steps_cached}",
                               "load": f"{report.load(load_a)} / {report.load(load_b)}"}
                self.results.setdefault("5", {})[c.key] = {"a": asdict(on_a) | {"log": str(on_a.log)},
                                                           "b": asdict(on_b) | {"log": str(on_b.log)},
                                                           "other": asdict(other) | {"log": str(other.log)}}
        self.results.setdefault("5", {})["table"] = rows
        self.emit(report.table(f"Scenario 5: builder handoff through a registry cache ({x.name}; engine B: {why})",
                               rows, LABELS, [
            report.Column("a", "A: cold + cache export", report.seconds, True),
            report.Column("b", "B: with cache import", report.seconds, True),
            report.Column("b_over_a", "B ÷ A", lambda v: f"{v:.2f}" if isinstance(v, float) else str(v)),
            report.Column("b_over_cold", "B ÷ cold (scenario 2–4 run)", lambda v: f"{v:.2f}" if isinstance(v, float) else str(v)),
            report.Column("steps", "RUN steps run/cached on B"),
            report.Column("other", f"B: {z.name} from {x.name}'s cache", report.seconds, True),
            report.Column("other_steps", "its RUN steps run/cached"),
            report.Column("load", "mean load A / B"),
        ], note="Engine B pulls the bases from the registry (removed from B first, for every contender). "
                f"The {z.name} build on B starts from an emptied build cache again, with only A's {x.name} cache."))

    # ------------------------------------------------------------------ targets

    def targets(self) -> list[report.Target]:
        out: list[report.Target] = []

        def num(x: object) -> float | None:
            return float(x) if isinstance(x, (int, float)) else None

        s2 = self.results.get("2-4", {}).get("tables", {}).get("2", {})
        a, c = num(s2.get("a", {}).get("share")), num(s2.get("c", {}).get("share"))
        out.append(report.Target("base switch reuses ≥ 95 % of non-base layer bytes ((c) reuses none)",
                                 f"(a) {report.percent(a)}, (c) {report.percent(c)}" if a is not None else "—",
                                 None if a is None else a >= 0.95))
        s1 = self.results.get("1", {})
        aw, cw = num(s1.get("a", {}).get("wall")), num(s1.get("c", {}).get("wall"))
        out.append(report.Target("cold-matrix wall time ≤ 0.6 × (c)",
                                 f"{aw / cw:.3f} × (c)" if aw and cw else "—", None if not (aw and cw) else aw <= 0.6 * cw))
        ar, br, cr = (num(s1.get(k, {}).get("registry")) for k in "abc")
        met = None if not (ar and cr) else (ar <= 0.6 * cr and (br is None or ar < br))
        measured = (f"{ar / cr:.3f} × (c)" + (f", {ar / br:.4f} × (b)" if br else ", (b) not measured")) if ar and cr else "—"
        out.append(report.Target("unique registry bytes ≤ 0.6 × (c) and below (b)", measured, met))
        s4 = self.results.get("2-4", {}).get("tables", {}).get("4", {})
        an, bn = num(s4.get("a", {}).get("time")), num(s4.get("b", {}).get("time"))
        solved = num(s4.get(ALWAYS_SOLVE, {}).get("time"))
        measured = f"(a) {report.short_seconds(an)}, (b) {report.short_seconds(bn)}" if an and bn else "—"
        if solved and an and bn:
            measured += f"; (a) --always-solve {report.short_seconds(solved)}"
        out.append(report.Target("no-op rebuild no slower than (b)", measured, None if not (an and bn) else an <= bn))
        s5 = self.results.get("5", {}).get("table", {}).get("a", {})
        hb = num(s5.get("b_over_cold")) or None
        ha = num(s5.get("b_over_a"))
        ref, value = ("cold", hb) if hb is not None else ("A's cold + export", ha)
        out.append(report.Target("builder handoff ≤ 0.3 × cold",
                                 f"{value:.2f} × {ref}" if value is not None else str(s5.get("b", "—")),
                                 None if value is None else value <= 0.3))
        return out

    # ------------------------------------------------------------------ cleanup

    def cleanup(self) -> None:
        ready = len(self.bases) == 2 and len(self.torch_axis) == 2
        tags = [c.tag(self.variant(b, t)) for c in self.contenders for b in range(2) for t in range(2)] if ready else []
        for engine in self.engines:
            engine.remove_images(tags + ([b.ref for b in self.bases] if engine is not MAIN else []))
        MAIN.remove_images([b.ref for b in self.bases])
        failed = self.registry.cleanup()
        if failed:
            self.log(f"could not delete from the registry: {failed}")
        if self.mirror is not None:
            self.mirror.stop()
        if not self.args.keep_workdir:
            shutil.rmtree(self.workdir / "contexts", ignore_errors=True)
            shutil.rmtree(self.workdir / "bases", ignore_errors=True)


def base_switch_reuse(first_layers, layers, base_layers) -> dict[str, object]:
    """How much of an image's non-base layers (those above ``base_layers``) an earlier image already has.

    Layers are (digest, compressed size) pairs, base first.
    """
    on_base = [d for d, _ in layers[:len(base_layers)]] == [d for d, _ in base_layers]
    above = layers[len(base_layers):]
    old = {d for d, _ in first_layers}
    reused = sum(size for d, size in above if d in old)
    total = sum(size for _, size in above)
    return {"nonbase": total, "reused": reused, "share": reused / total if total else 0.0,
            "layers": f"{sum(1 for d, _ in above if d in old)} of {len(above)}"
                      + ("" if on_base else " (base layers not first!)")}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--scenarios", default="1,2,3,4,5", help="comma-separated scenario numbers (default: all)")
    p.add_argument("--contenders", default="abc", help="which contenders, in order (default: abc)")
    p.add_argument("--parallel", type=int, default=2, help="builds at a time in the cold matrix, same for all (default 2)")
    p.add_argument("--build-timeout", type=float, default=2400, help="seconds one build may take (default 2400)")
    p.add_argument("--retries", type=int, default=1, help="re-run a contender's cold matrix (from scratch) when a build fails")
    p.add_argument("--noop-repeats", type=int, default=5, help="no-op rebuilds in scenario 4; the median is shown")
    p.add_argument("--extra-package", default="tabulate", help="the small pip package of the second torch build")
    p.add_argument("--real-torch", action="store_true", help="torch axis = two real torch releases from PyPI (GBs)")
    p.add_argument("--real-torch-versions", default="2.4.1,2.5.1",
                   help="the two releases for --real-torch; one release: it vs it plus --extra-package")
    p.add_argument("--start-engine-b", action="store_true", help="run .ci/start-second-dockerd.sh when engine B is down")
    p.add_argument("--json", type=Path, help="also write every measurement as JSON here")
    p.add_argument("--markdown", type=Path, help="also write the printed tables here")
    p.add_argument("--keep-workdir", action="store_true", help="keep the rendered contexts (logs are always kept)")
    args = p.parse_args(argv)
    args.scenario_set = {int(s) for s in args.scenarios.split(",") if s.strip()}
    if not args.scenario_set <= {1, 2, 3, 4, 5}:
        p.error("--scenarios: numbers 1 to 5")
    if set(args.contenders) - set("abc"):
        p.error("--contenders: letters a, b, c")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not MAIN.answers():
        print(f"no Docker Engine at {MAIN.host}", file=sys.stderr)
        return 2
    bench = Bench(args)
    if not bench.registry.answers():
        print(f"no registry at {REGISTRY}", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        bench.setup()
        facts = machine_facts(bench.engines)
        bench.emit([f"## llbgen benchmark, {facts['date']} (scenarios {args.scenarios}"
                    + (", real torch" if args.real_torch else "") + ")", ""] + report.facts_lines(facts))
        if 1 in args.scenario_set:
            bench.cold_matrix()
        if args.scenario_set & {2, 3, 4}:
            bench.sequence(args.scenario_set)
        if 5 in args.scenario_set:
            bench.handoff()
        bench.emit(report.targets_table(bench.targets()))
        bench.emit([f"Load average at the end: {load_average()}; benchmark took {(time.monotonic() - started) / 60:.0f} min; "
                    f"logs in {bench.workdir / 'logs'}.", ""])
    finally:
        bench.cleanup()
        if args.json:
            args.json.write_text(json.dumps(bench.results, indent=2, default=str))
        if args.markdown:
            args.markdown.write_text("\n".join(bench.lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
