"""The torch step's last command: is what pip installed the build the image is labelled with?

Run by the image's Python (3.7 or later; standard library and torch) as
``python -I -c SOURCE VARIANT CUDA REQUIREMENT...``: ``cu121 12.1`` or ``cpu none``, then the pinned
requirements (``torch==VERSION`` ...). On a mismatch it prints one line naming what was expected and what
was found, and exits 1, so the build fails instead of shipping, say, a CUDA torch labelled CPU.

torch.version.cuda is the authority: None for cpu, the variant's CUDA for cuXYZ. A version's
local label (+cpu, +cu121), when the wheel has one, must name the variant too; a wheel without
one (a mirror of PyPI's plain wheels) is judged by torch.version.cuda and its release alone.
"""

import sys


def release(version):
    return version.split("+", 1)[0]


def local_label(version):
    return version.split("+", 1)[1] if "+" in version else None


def build_name(cuda):
    return "CPU" if cuda is None else "CUDA " + cuda


def short_cuda(cuda):
    return None if cuda is None else ".".join(str(cuda).split(".")[:2])


def problems(variant, cuda, torch_cuda, pinned, found):
    """What differs from the build asked for, one phrase each; [] when nothing does.

    ``pinned``: package -> release; ``found``: package -> installed version (missing: not installed).
    """
    out = []
    if short_cuda(torch_cuda) != cuda:
        torch = found.get("torch", "?")
        out.append(f"torch {torch} is a {build_name(short_cuda(torch_cuda))} build, expected {variant} ({build_name(cuda)})")
    for name, wanted in pinned.items():
        if name == "torch" and out:
            continue  # its build is already named
        version = found.get(name)
        if version is None:
            out.append(f"{name} is not installed, expected {wanted}+{variant}")
        elif release(version) != wanted or local_label(version) not in (None, variant):
            out.append(f"{name} {version} is installed, expected {wanted}+{variant}")
    return out


def installed_version(name):
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # Python 3.7
        from pkg_resources import DistributionNotFound as PackageNotFoundError
        from pkg_resources import get_distribution

        def version(name):
            return get_distribution(name).version
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def main(argv):
    variant, cuda = argv[0], (None if argv[1] == "none" else argv[1])
    pinned = dict(requirement.split("==", 1) for requirement in argv[2:])
    try:
        import torch
    except Exception as err:
        print(f"llbgen: the installed torch cannot be imported: {err}", file=sys.stderr)
        return 1
    found = {"torch": torch.__version__}
    for name in pinned:
        if name != "torch":
            found[name] = installed_version(name)
    mismatches = problems(variant, cuda, torch.version.cuda, pinned, found)
    if mismatches:
        print("llbgen: the torch index served another build: " + "; ".join(mismatches)
              + " (check --torch-index-url)", file=sys.stderr)
        return 1
    print("llbgen: installed " + ", ".join(f"{n} {v}" for n, v in found.items())
          + f" ({build_name(cuda)} build, as the image says)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
