"""Walk a local directory the way BuildKit's file sender does (tonistiigi/fsutil).

The daemon's receiver validates the stream: entries must come depth first, each
directory's entries in byte-wise sorted order, parents before children
(fsutil validator.go). Modes are Go ``os.FileMode`` values, not POSIX ``st_mode``.

Filtering follows fsutil's ``filterFS.Walk``: a directory that is not itself
included (or is excluded) is still descended into when a pattern could match
something below it, and it is sent — lazily, just before its first surviving
descendant — so the receiver always sees parents first. Directories that no
pattern can reach into are skipped without reading them.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat as pystat
from collections.abc import Iterator
from dataclasses import dataclass

from llbgen._proto.fsutil import stat_pb2
from llbgen.builder.session.patterns import Pattern, PatternMatcher, compile_pattern, go_clean

# Go os.FileMode bits (io/fs/fs.go).
MODE_DIR = 1 << 31
MODE_SYMLINK = 1 << 27
MODE_DEVICE = 1 << 26
MODE_NAMED_PIPE = 1 << 25
MODE_SOCKET = 1 << 24
MODE_SETUID = 1 << 23
MODE_SETGID = 1 << 22
MODE_CHAR_DEVICE = 1 << 21
MODE_STICKY = 1 << 20
MODE_IRREGULAR = 1 << 19
MODE_TYPE = MODE_DIR | MODE_SYMLINK | MODE_NAMED_PIPE | MODE_SOCKET | MODE_DEVICE | MODE_CHAR_DEVICE | MODE_IRREGULAR

# Characters that make a pattern more than a literal path (fsutil filter.go).
_PATTERN_CHARS = set("*[]?^\\")


def go_file_mode(st_mode: int) -> int:
    """os.FileMode from a POSIX st_mode, as Go's fillFileStatFromSys computes it."""
    mode = st_mode & 0o777
    fmt = pystat.S_IFMT(st_mode)
    if fmt == pystat.S_IFBLK:
        mode |= MODE_DEVICE
    elif fmt == pystat.S_IFCHR:
        mode |= MODE_DEVICE | MODE_CHAR_DEVICE
    elif fmt == pystat.S_IFDIR:
        mode |= MODE_DIR
    elif fmt == pystat.S_IFIFO:
        mode |= MODE_NAMED_PIPE
    elif fmt == pystat.S_IFLNK:
        mode |= MODE_SYMLINK
    elif fmt == pystat.S_IFSOCK:
        mode |= MODE_SOCKET
    if st_mode & pystat.S_ISGID:
        mode |= MODE_SETGID
    if st_mode & pystat.S_ISUID:
        mode |= MODE_SETUID
    if st_mode & pystat.S_ISVTX:
        mode |= MODE_STICKY
    return mode


def can_request_data(mode: int) -> bool:
    """Only regular files (hard links included) are ever asked for content (fsutil send.go)."""
    return mode & MODE_TYPE == 0


@dataclass
class WalkEntry:
    stat: stat_pb2.Stat
    abspath: str


@dataclass
class _Dir:
    rel: str
    abspath: str
    include_info: list[bool] | None
    exclude_info: list[bool] | None
    sent: bool = False


class FilteredWalk:
    """Iterate ``WalkEntry`` for a local source, honouring include/exclude/followpaths."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        include_patterns: list[str] | None = None,
        exclude_patterns: list[str] | None = None,
        follow_paths: list[str] | None = None,
    ):
        # fsutil.NewFS resolves the root itself; only what is below it is walked literally.
        self.root = os.path.realpath(root)
        includes = list(include_patterns) if include_patterns is not None else None
        if follow_paths is not None:
            targets = follow_links(self.root, follow_paths)
            if targets is not None:
                includes = _dedupe_paths((includes or []) + targets)
        self.include = PatternMatcher(includes) if includes else None
        self.exclude = PatternMatcher(exclude_patterns) if exclude_patterns else None
        self._only_prefix_includes = self.include is None or not any(
            not p.exclusion and _has_pattern_chars(p) for p in self.include.patterns
        )
        self._only_prefix_exclude_exceptions = self.exclude is None or not any(
            p.exclusion and _has_pattern_chars(p) for p in self.exclude.patterns
        )
        # (st_dev, st_ino) → first path sent; fsutil keys on the inode only, the device
        # is added so a bind mount inside the context cannot fake a hard link.
        self._inodes: dict[tuple[int, int], str] = {}

    def __iter__(self) -> Iterator[WalkEntry]:
        return self._walk_dir(self.root, "", [], skipped=False)

    def _walk_dir(self, abs_dir: str, rel_dir: str, parents: list[_Dir], skipped: bool) -> Iterator[WalkEntry]:
        try:
            names = os.listdir(abs_dir)
        except OSError as exc:
            # fsutil ignores unreadable directories only when they were filtered out anyway.
            if skipped and exc.errno in (errno.EACCES, errno.EPERM):
                return
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return
            raise
        # Go sorts directory entries by their bytes, not by code points or locale.
        names.sort(key=os.fsencode)
        parent = parents[-1] if parents else None
        for name in names:
            rel = f"{rel_dir}/{name}" if rel_dir else name
            abspath = os.path.join(abs_dir, name)
            try:
                st = os.lstat(abspath)
            except FileNotFoundError:
                continue  # vanished during the walk, as fsutil does
            is_dir = pystat.S_ISDIR(st.st_mode)
            skip = False
            include_info = exclude_info = None
            if self.include is not None:
                matched, include_info = self.include.matches(rel, parent.include_info if parent else None)
                if not matched:
                    if is_dir and self._only_prefix_includes and not self._may_contain(self.include.patterns, rel, exclusion=False):
                        continue
                    skip = True
            if self.exclude is not None:
                matched, exclude_info = self.exclude.matches(rel, parent.exclude_info if parent else None)
                if matched:
                    if (
                        is_dir
                        and self._only_prefix_exclude_exceptions
                        and (not self.exclude.exclusions or not self._may_contain(self.exclude.patterns, rel, exclusion=True))
                    ):
                        continue
                    skip = True
            node = _Dir(rel, abspath, include_info, exclude_info) if is_dir else None
            if not skip:
                # Directories held back by the filter are sent right before their first child.
                for pending in parents:
                    if not pending.sent:
                        pending.sent = True
                        entry = self._entry(pending.abspath, pending.rel)
                        if entry is not None:
                            yield entry
                entry = self._entry(abspath, rel, st)
                if entry is not None:
                    yield entry
                if node is not None:
                    node.sent = True
            if node is not None:
                yield from self._walk_dir(abspath, rel, [*parents, node], skipped=skip)

    @staticmethod
    def _may_contain(patterns: list[Pattern], rel: str, exclusion: bool) -> bool:
        """True if a literal (prefix-only) pattern of that polarity points below ``rel``."""
        prefix = rel + "/"
        return any(p.exclusion == exclusion and (p.without_trailing_glob() + "/").startswith(prefix) for p in patterns)

    def _entry(self, abspath: str, rel: str, st: os.stat_result | None = None) -> WalkEntry | None:
        if st is None:
            try:
                st = os.lstat(abspath)
            except FileNotFoundError:
                return None
        return WalkEntry(self._stat(abspath, rel, st), abspath)

    def _stat(self, abspath: str, rel: str, st: os.stat_result) -> stat_pb2.Stat:
        """fsutil mkstat + setUnixOpt (stat.go, stat_unix.go)."""
        mode = go_file_mode(st.st_mode) & ~MODE_SOCKET  # archive/tar cannot carry sockets
        out = stat_pb2.Stat(path=rel, mode=mode, uid=st.st_uid, gid=st.st_gid, modTime=st.st_mtime_ns)
        if not pystat.S_ISDIR(st.st_mode):
            if pystat.S_ISBLK(st.st_mode) or pystat.S_ISCHR(st.st_mode):
                # Go's (glibc-compatible) major/minor split.
                out.devmajor = (st.st_rdev >> 8) & 0xFFF
                out.devminor = (st.st_rdev & 0xFF) | ((st.st_rdev >> 12) & 0xFFF00)
            if st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                first = self._inodes.get(key)
                if first is None:
                    self._inodes[key] = rel
                else:
                    # A later path of a hard link names the first one; the receiver links it.
                    out.linkname = first
            out.size = st.st_size
            if pystat.S_ISLNK(st.st_mode):
                out.linkname = os.readlink(abspath)
        xattrs = _xattrs(abspath)
        if xattrs:
            out.xattrs.update(xattrs)
        return out


def _has_pattern_chars(p: Pattern) -> bool:
    return any(c in _PATTERN_CHARS for c in p.without_trailing_glob())


def _xattrs(path: str) -> dict[str, bytes]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOENT):
            return {}
        raise
    out: dict[str, bytes] = {}
    for name in names:
        if name.startswith("com.apple."):
            continue
        try:
            out[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue  # Go ignores values it cannot read
    return out


# --- followpaths: fsutil followlinks.go -------------------------------------------


def follow_links(root: str, paths: list[str]) -> list[str] | None:
    """Resolve symlinks along ``paths`` into extra include paths; None means "everything"."""
    resolved: set[str] = set()

    def append(p: str) -> None:
        p = go_clean("./" + p) if p else "."
        current = "."
        while True:
            first, sep, rest = p.partition("/")
            current = go_clean(f"{current}/{first}")
            targets = _read_symlink(root, current, allow_wildcard=True)
            p = rest if sep else ""
            if (p == "" or targets is not None) and current in resolved:
                return
            if targets is not None:
                resolved.add(current)
                for target in targets:
                    append(go_clean(f"{target}/{p}") if p else target)
                return
            if p == "":
                resolved.add(current)
                return

    for path in paths:
        append(path)
    return _dedupe_paths(sorted(resolved))


def _read_symlink(root: str, p: str, allow_wildcard: bool) -> list[str] | None:
    base = posixpath.basename(p)
    if allow_wildcard and _contains_wildcards(base):
        parent = posixpath.dirname(p) or "."
        try:
            names = sorted(os.listdir(os.path.join(root, parent)), key=os.fsencode)
        except (FileNotFoundError, NotADirectoryError):
            return None
        matcher = compile_pattern(base, False)
        out: list[str] = []
        for name in names:
            if matcher.match(name):
                out.extend(_read_symlink(root, posixpath.join(parent, name), False) or [])
        return out or None
    if p in (".", "/"):
        return None
    full = os.path.join(root, p)
    try:
        st = os.lstat(full)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not pystat.S_ISLNK(st.st_mode):
        return None
    link = go_clean(os.readlink(full))
    if link.startswith("/"):
        return [link]
    return [go_clean("/" + posixpath.join(posixpath.dirname(p), link))]


def _contains_wildcards(name: str) -> bool:
    i = 0
    while i < len(name):
        if name[i] == "\\":
            i += 1
        elif name[i] in "*?[":
            return True
        i += 1
    return False


def _dedupe_paths(paths: list[str]) -> list[str] | None:
    """fsutil dedupePaths: drop paths below an earlier one; "." anywhere means no filter."""
    out: list[str] = []
    last = ""
    for s in paths:
        if s == ".":
            return None
        if s.startswith(last + "/"):
            continue
        out.append(s)
        last = s
    return out
