""".dockerignore-style path patterns, matched the way BuildKit's file sender matches them.

The daemon hands include/exclude patterns to the session and expects the client
to filter (fsutil.NewFilterFS → github.com/moby/patternmatcher). This module
reproduces patternmatcher v0.6 (`New`, `compile`, `MatchesUsingParentResults`).

docker-py's `docker.utils.build.PatternMatcher` is not used: it lower-cases
names and patterns (Linux BuildKit matches case-sensitively), silently appends
`!.dockerignore`, has no `\\` escapes, and only checks one parent prefix (the
behaviour patternmatcher deprecated as buggy), so `**/foo` would not exclude
`a/b/foo/x`. Any of those would send a different context than buildx does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Characters that mean something in a regexp but not in a filepath pattern.
_REGEX_ONLY = set(".+()|{}$")


def go_clean(path: str) -> str:
    """Go's path.Clean: patterns are normalised with it before compiling."""
    if path == "":
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for seg in path.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(seg)
    out = "/".join(parts)
    if rooted:
        return "/" + out
    return out or "."


@dataclass
class Pattern:
    cleaned: str
    exclusion: bool
    kind: str = "exact"  # exact | prefix | suffix | regexp
    regex: re.Pattern[str] | None = field(default=None, repr=False)

    def match(self, path: str) -> bool:
        if self.kind == "exact":
            return path == self.cleaned
        if self.kind == "prefix":
            return path.startswith(self.cleaned[:-2])
        if self.kind == "suffix":
            suffix = self.cleaned[2:]
            if path.endswith(suffix):
                return True
            # "**/foo" also matches "foo" itself.
            return suffix[:1] == "/" and path == suffix[1:]
        assert self.regex is not None
        return self.regex.match(path) is not None

    def without_trailing_glob(self) -> str:
        """fsutil's patternWithoutTrailingGlob: the literal directory a pattern is rooted at."""
        s = self.cleaned
        for tail in ("/**", "/*"):
            s = s.removesuffix(tail)
        return s


def compile_pattern(pattern: str, exclusion: bool) -> Pattern:
    """Port of patternmatcher's Pattern.compile (Linux separator)."""
    reg = "^"
    kind = "exact"
    i, n, step = 0, len(pattern), 0
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1
                if i >= n:
                    # "**" at the end accepts everything below.
                    if kind == "exact":
                        kind = "prefix"
                    else:
                        reg += ".*"
                        kind = "regexp"
                else:
                    reg += "(.*/)?"
                    kind = "regexp"
                if step == 0:
                    kind = "suffix"
            else:
                reg += "[^/]*"
                kind = "regexp"
        elif ch == "?":
            reg += "[^/]"
            kind = "regexp"
        elif ch in _REGEX_ONLY:
            reg += "\\" + ch
        elif ch == "\\":
            if i < n:
                reg += "\\" + pattern[i]
                i += 1
                kind = "regexp"
            else:
                reg += "\\\\"
        elif ch in "[]":
            reg += ch
            kind = "regexp"
        else:
            reg += ch
        step += 1
    # Compile even for the non-regexp kinds: a bad pattern must fail up front,
    # as filepath.Match's syntax check does in Go.
    try:
        regex = re.compile(reg + "$")
    except re.error as exc:
        raise ValueError(f"invalid pattern {pattern!r}: {exc}") from None
    return Pattern(pattern, exclusion, kind, regex if kind == "regexp" else None)


class PatternMatcher:
    """An ordered list of patterns; later ones override earlier ones, `!` negates."""

    def __init__(self, patterns: list[str]):
        self.patterns: list[Pattern] = []
        for raw in patterns:
            p = raw.strip()
            if not p:
                continue
            p = go_clean(p)
            exclusion = p.startswith("!")
            if exclusion:
                if len(p) == 1:
                    raise ValueError('illegal exclusion pattern: "!"')
                p = p[1:]
            self.patterns.append(compile_pattern(p, exclusion))
        self.exclusions = any(p.exclusion for p in self.patterns)

    def matches(self, path: str, parent: list[bool] | None) -> tuple[bool, list[bool]]:
        """patternmatcher.MatchesUsingParentResults.

        `parent` is the per-pattern result list of the parent directory (None at
        the top). Returns (matched, per-pattern results to hand to children).
        """
        matched = False
        info = [False] * len(self.patterns)
        for idx, pat in enumerate(self.patterns):
            hit = parent[idx] if parent else False
            if not hit:
                # An inclusion cannot change an existing match, an exclusion
                # cannot undo a non-match: skip, like Go.
                if pat.exclusion != matched:
                    continue
                hit = pat.match(path)
                if not hit and not parent and "/" in path:
                    dirs = path.split("/")[:-1]
                    hit = any(pat.match("/".join(dirs[: k + 1])) for k in range(len(dirs)))
            info[idx] = hit
            if hit:
                matched = not pat.exclusion
        return matched, info

    def matches_or_parent_matches(self, path: str) -> bool:
        return self.matches(path, None)[0]
