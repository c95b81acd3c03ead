#!/usr/bin/env python3
"""llbgen-layers.py: the two things a Dockerfile needs to attach a stage's *changes* as a layer.

Written next to the Dockerfile by ``llbgen export-dockerfile``; run inside the build by
the image's own Python (``/root/miniconda3/bin/python -I -B``), standard library only,
Python 3.7 and later.

``diff LOWER OUT ROOT...``
    Copy into ``OUT`` every entry under ``ROOT`` (an absolute path of this filesystem) that
    is new or differs from ``LOWER/ROOT`` (type, mode, owner, size, modification time or
    link target), with the parent directories of each (their mode and owner as here) —
    what BuildKit's DiffOp gives ``llbgen build``. ``COPY --link --from=<stage> OUT/ /``
    then attaches exactly what the stage changed, as a layer that does not depend on
    the base image.

``prune FINAL ROOT...``
    Remove every entry under ``ROOT`` that ``FINAL/ROOT`` does not have: the files a
    later stage deleted (pip removes the old version of a package it upgrades), which
    COPY cannot express. Then check that ``ROOT`` matches ``FINAL/ROOT`` entry for entry
    (type, mode, owner, size, link target) and fail the build if it does not.
"""

import os
import shutil
import stat
import sys


def _lstat(path):
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _kind(st):
    return stat.S_IFMT(st.st_mode)


def _meta(st):
    return (_kind(st), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)


def _unchanged(path, st, lower_path, low):
    if low is None or _meta(st) != _meta(low):
        return False
    if stat.S_ISDIR(st.st_mode):
        return True  # its entries are compared one by one
    if stat.S_ISLNK(st.st_mode):
        return os.readlink(path) == os.readlink(lower_path)
    return st.st_size == low.st_size and st.st_mtime_ns == low.st_mtime_ns


class Layer:
    """The output tree of ``diff``: copies with their metadata, parents made as in the source."""

    def __init__(self, out):
        self.out = out
        self.dirs = []  # (out path, source stat): directory times are set last
        self.links = {}  # (dev, inode) -> out path, to keep hard links
        self.copied = 0
        os.makedirs(out, exist_ok=True)

    def target(self, path):
        return os.path.join(self.out, path.lstrip("/"))

    def ensure_parents(self, path):
        parts = path.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            source = "/" + "/".join(parts[:i])
            if not os.path.isdir(self.target(source)):
                self.copy(source, os.lstat(source))

    def copy(self, path, st):
        dst = self.target(path)
        if stat.S_ISDIR(st.st_mode):
            if not os.path.isdir(dst):
                os.mkdir(dst)
            self.dirs.append((dst, st))
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(path), dst)
        elif stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self.links:
                os.link(self.links[key], dst)
                self.copied += 1
                return
            shutil.copyfile(path, dst, follow_symlinks=False)
            self.links[key] = dst
        else:
            print("llbgen-layers: skipped special file " + path, file=sys.stderr)
            return
        os.lchown(dst, st.st_uid, st.st_gid)
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(dst, stat.S_IMODE(st.st_mode))  # after chown, which clears set-id bits
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
        self.copied += 1

    def finish(self):
        for dst, st in reversed(self.dirs):
            os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))


def diff(lower, out, roots):
    layer = Layer(out)
    deleted = 0
    for root in roots:
        root = os.path.normpath(root)
        st = _lstat(root)
        if st is None:
            continue
        lower_root = os.path.join(lower, root.lstrip("/"))
        if not _unchanged(root, st, lower_root, _lstat(lower_root)):
            layer.ensure_parents(root)
            layer.copy(root, st)
        for dirpath, dirnames, filenames in os.walk(root):
            lower_dir = os.path.join(lower, dirpath.lstrip("/"))
            names = dirnames + filenames
            if os.path.isdir(lower_dir) and not os.path.islink(lower_dir):
                deleted += len(set(os.listdir(lower_dir)) - set(names))
            for name in names:
                path = os.path.join(dirpath, name)
                st = os.lstat(path)
                lower_path = os.path.join(lower_dir, name)
                if _unchanged(path, st, lower_path, _lstat(lower_path)):
                    continue
                layer.ensure_parents(path)
                layer.copy(path, st)
    layer.finish()
    print(f"llbgen-layers: {layer.copied} entries new or changed, {deleted} deleted (removed by the prune step)")


def _signature(path, st):
    target = os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
    size = st.st_size if stat.S_ISREG(st.st_mode) else None
    return _meta(st) + (size, target)


def prune(final, roots):
    removed, mismatches = 0, []
    for root in roots:
        root = os.path.normpath(root)
        final_root = os.path.join(final, root.lstrip("/"))
        if _lstat(final_root) is None:
            if _lstat(root) is not None:
                shutil.rmtree(root)
                removed += 1
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            final_dir = os.path.join(final, dirpath.lstrip("/"))
            for name in list(dirnames) + filenames:
                path = os.path.join(dirpath, name)
                if _lstat(os.path.join(final_dir, name)) is not None:
                    continue
                if name in dirnames and not os.path.islink(path):
                    shutil.rmtree(path)
                    dirnames.remove(name)
                else:
                    os.unlink(path)
                removed += 1
        # The layers must give the final stage's tree exactly; a difference is a bug, not a detail.
        seen = {}
        for base, store in ((root, "image"), (final_root, "stage")):
            for dirpath, dirnames, filenames in os.walk(base):
                for name in dirnames + filenames:
                    path = os.path.join(dirpath, name)
                    rel = os.path.relpath(path, base)
                    seen.setdefault(rel, {})[store] = _signature(path, os.lstat(path))
        for rel, sides in sorted(seen.items()):
            if sides.get("image") != sides.get("stage"):
                mismatches.append(f"{root}/{rel}: image {sides.get('image')}, stage {sides.get('stage')}")
    print(f"llbgen-layers: removed {removed} entries a later stage deleted")
    if mismatches:
        print(f"llbgen-layers: the layers do not reproduce the last stage ({len(mismatches)} differences):",
              file=sys.stderr)
        for line in mismatches[:20]:
            print("  " + line, file=sys.stderr)
        sys.exit(1)


def main(argv):
    if len(argv) >= 4 and argv[1] == "diff":
        diff(argv[2], argv[3], argv[4:])
    elif len(argv) >= 3 and argv[1] == "prune":
        prune(argv[2], argv[3:])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv)
