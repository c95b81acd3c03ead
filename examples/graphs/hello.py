"""A small graph using every op kind: ``llbgen solve examples/graphs/hello.py:graph --local ctx=examples``."""

from llbgen import llb


def graph(resolve):
    base = resolve("llbgen-test/debian:bookworm")
    ctx = llb.local("ctx", include=["graphs/*.py"])
    tools = base.run(
        "mkdir -p /opt/hello && echo hello > /opt/hello/greeting",
        name="write greeting",
        mounts=[llb.cache_mount("/var/cache/hello", "hello-cache"), llb.tmpfs("/tmp")],
    ).root
    files = llb.scratch().file(
        llb.mkdir("/etc/hello", 0o755, make_parents=True)
        .mkfile("/etc/hello/motd", 0o644, "hi from llbgen\n")
        .copy(ctx, "graphs/hello.py", "/etc/hello/graph.py")
    )
    return llb.merge([base, llb.diff(base, tools), files]).with_env("HELLO", "1").with_config(cmd=("cat", "/opt/hello/greeting"))
