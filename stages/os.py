"""The os layer, built on the base image: system packages, Chinese locale, China time, sshd.

One apt step, non-interactive, with retries and apt's caches on cache mounts
(so a rebuild downloads nothing it already has and no package file lands in a
layer). Works on Debian and Ubuntu bases, whatever the spec's distro says: the
locale step reads ``/etc/os-release``. No SSH host keys are left in the image;
``/init/boot/boot.sh`` makes them per container.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from llbgen import llb
from stages.context import StageContext
from stages.step import APT_AUTH, CA_PATH, CacheDir, Step, quote, run_steps, script

PACKAGES = ("openssh-server", "locales", "tzdata", "curl", "ca-certificates", "vim", "tmux", "wget", "tini",
            "supervisor", "procps", "less")
LOCALE = "zh_CN.UTF-8"
TIMEZONE = "Asia/Shanghai"

# The Docker images' apt hook that deletes downloaded .debs (which would empty the cache
# mount); moved aside for this step and put back, so the image behaves like its base.
DOCKER_CLEAN = "/etc/apt/apt.conf.d/docker-clean"


def _sed_escape(text: str) -> str:
    return re.sub(r"([#&\\])", r"\\\1", text)


def mirror_rewrite(mirror: str) -> str:
    """Point the distribution's archive (sources.list and deb822 .sources) at ``mirror``.

    Ubuntu's security pocket lives in the same archive, so it moves too; Debian's
    ``debian-security`` archive moves to the mirror's sibling ``debian-security`` when
    the mirror's path ends in ``/debian`` (as on every public mirror), else it stays.
    Third-party repositories (NVIDIA's CUDA repo) are left alone.
    """
    base = mirror.rstrip("/")
    m = _sed_escape(base)
    exprs = [rf"s#https?://(archive|security)\.ubuntu\.com/ubuntu/?([[:space:]]|$)#{m}/\2#g"]
    if base.endswith("/debian"):
        security = _sed_escape(base[: -len("/debian")] + "/debian-security")
        exprs.append(rf"s#https?://(deb|security)\.debian\.org/debian-security/?([[:space:]]|$)#{security}/\2#g")
    exprs.append(rf"s#https?://deb\.debian\.org/debian/?([[:space:]]|$)#{m}/\1#g")
    sed = " ".join(f"-e {quote([e])}" for e in exprs)
    return (
        "for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do "
        f'if [ -f "$f" ]; then sed -i -E {sed} "$f"; fi; done'
    )


LOCALE_SCRIPT = (
    ". /etc/os-release\n"
    'case " ${ID:-} ${ID_LIKE:-} " in\n'
    f"  *' ubuntu '*) locale-gen {LOCALE} ;;\n"
    f"  *) if grep -q '^# *{LOCALE} UTF-8' /etc/locale.gen; then sed -i 's/^# *\\({LOCALE} UTF-8\\)/\\1/' /etc/locale.gen;\n"
    f"     elif ! grep -q '^{LOCALE} UTF-8' /etc/locale.gen; then echo '{LOCALE} UTF-8' >> /etc/locale.gen; fi\n"
    "     locale-gen ;;\n"
    "esac\n"
    f"update-locale LANG={LOCALE}"
)


@dataclass(frozen=True)
class OsStage:
    """apt packages, locale, timezone and sshd on the base image."""

    base_image: str
    distro: str
    packages: tuple[str, ...] = PACKAGES
    apt_mirror: str | None = None
    ca: bool = False
    apt_login: bool = False  # the mirror's login, as a secret auth.conf

    @classmethod
    def from_context(cls, ctx: StageContext) -> OsStage:
        extra = tuple(p for p in ctx.spec.spec.apt_packages if p not in PACKAGES)
        return cls(base_image=ctx.spec.base_image, distro=ctx.spec.distro, packages=PACKAGES + extra,
                   apt_mirror=ctx.mirrors.apt, ca=ctx.ca, apt_login=ctx.apt_login)

    def depends_on(self) -> dict[str, str]:
        deps = {"base": self.base_image, "packages": " ".join(self.packages),
                "apt mirror": self.apt_mirror or "(the base's sources)"}
        if self.ca:
            deps["CA bundle"] = "secret mount (content not in the key)"
        if self.apt_login:
            deps["apt login"] = "secret mount (not in the key)"
        return deps

    def steps(self) -> tuple[Step, ...]:
        apt = "apt-get -o Acquire::Retries=5" + (f" -o Acquire::https::CAInfo={CA_PATH}" if self.ca else "")
        apt += f" -o Dir::Etc::netrc={APT_AUTH.path}" if self.apt_login else ""
        body = script(
            f"if [ -f {DOCKER_CLEAN} ]; then mv {DOCKER_CLEAN} /tmp/llbgen-docker-clean; fi",
            mirror_rewrite(self.apt_mirror) if self.apt_mirror else "",
            f"{apt} update",
            f"{apt} install -y --no-install-recommends {quote(self.packages)}",
            f"if [ -f /tmp/llbgen-docker-clean ]; then mv /tmp/llbgen-docker-clean {DOCKER_CLEAN}; fi",
            LOCALE_SCRIPT,
            f"ln -snf /usr/share/zoneinfo/{TIMEZONE} /etc/localtime",
            f"echo {TIMEZONE} > /etc/timezone",
            # sshd: its privilege-separation directory; host keys are made at first boot, per container.
            "mkdir -p /run/sshd",
            "rm -f /etc/ssh/ssh_host_*",
            "rm -f /var/log/apt/*.log /var/log/dpkg.log /var/log/alternatives.log /var/cache/debconf/*-old",
        )
        return (
            Step(
                name=f"os: apt-get install {' '.join(self.packages)}; {LOCALE}; {TIMEZONE}",
                script=body,
                env=(("DEBIAN_FRONTEND", "noninteractive"),),
                caches=(
                    CacheDir("/var/cache/apt", f"llbgen-apt-cache-{self.distro}", "locked"),
                    CacheDir("/var/lib/apt", f"llbgen-apt-lib-{self.distro}", "locked"),
                ),
                network="download",
                secret_files=(APT_AUTH,) if self.apt_login else (),
                urls=(self.apt_mirror,) if self.apt_mirror else (),
            ),
        )

    def build(self, ctx: StageContext, on: llb.State) -> llb.State:
        """The base (``on``) with this stage's steps run on it."""
        return run_steps(on, self.steps(), ctx)
