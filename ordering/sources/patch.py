"""Read patches: a git format-patch mail, an mbox series, a plain unified diff.

:func:`read_patches` turns the text into :class:`Patch` objects, in the order they apply, the
cover letter of a series (``[PATCH 0/N]``, or a mail without a diff) left out. Each patch
holds its files and hunks with their line numbers, and the diff text itself (for ``git
apply`` on a copy of a tree). Mail bodies in quoted-printable or base64 are decoded.

Nothing here judges a hunk: :mod:`ordering.sources.patch_apply` does.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass

from ordering.errors import SourceTreeError

__all__ = ["FileDiff", "Hunk", "Line", "Patch", "read_patches"]


@dataclass(frozen=True)
class Line:
    """One line of a hunk: ``tag`` is ``" "`` (context), ``"-"`` or ``"+"``."""

    tag: str
    text: str
    old: int
    """Its line in the old file (0 for an added line)."""
    new: int
    """Its line in the new file (0 for a removed line)."""


@dataclass(frozen=True)
class Hunk:
    """One ``@@ -a,b +c,d @@ section`` hunk."""

    index: int
    """1-based, within its file."""
    old_start: int
    new_start: int
    section: str
    """What follows the second ``@@`` (git's enclosing function or declaration)."""
    lines: tuple[Line, ...]
    where: str
    """``PATCHFILE:LINE`` of the ``@@`` line."""

    def side(self, tag: str) -> list[Line]:
        """The old (``"-"``) or new (``"+"``) side: context plus that side's lines."""
        return [ln for ln in self.lines if ln.tag in (" ", tag)]

    @property
    def changed(self) -> list[Line]:
        """Only the removed and added lines."""
        return [ln for ln in self.lines if ln.tag != " "]


@dataclass(frozen=True)
class FileDiff:
    """The hunks of one file."""

    old_path: str
    new_path: str
    hunks: tuple[Hunk, ...]

    @property
    def path(self) -> str:
        """The file's path in the tree (the new one, or the old one when deleted)."""
        return self.old_path if self.new_path == "/dev/null" else self.new_path


@dataclass(frozen=True)
class Patch:
    """One patch (a mail of a series, or a whole plain diff)."""

    subject: str
    files: tuple[FileDiff, ...]
    diff: str
    """The diff text, as ``git apply`` and ``patch`` take it."""
    source: str
    """The file it was read from (``-`` for stdin) and, in a series, which mail."""
    commit: str = ""
    author: str = ""
    message_id: str = ""

    @property
    def label(self) -> str:
        """Commit id (12 digits) and subject, or the file name."""
        head = f"{self.commit[:12]} " if self.commit else ""
        return f"{head}{self.subject}" if self.subject else self.source


_MBOX_FROM = re.compile(r"^From (?:[0-9a-f]{40} |\S+@\S+ |\S+ +\w{3} \w{3} )", re.MULTILINE)
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@ ?(.*)$")
_COVER = re.compile(r"\[[^\]]*\b0+/\d+\s*\]")


def _strip(path: str) -> str:
    path = path.split("\t", 1)[0].strip()
    if path.startswith('"') and path.endswith('"'):
        path = path[1:-1]
    return path


def _pair(old: str, new: str) -> tuple[str, str]:
    """Paths without their ``a/``/``b/`` (or first-folder) prefix."""
    if (old.startswith("a/") and new.startswith(("b/", "/dev/null"))) or (old == "/dev/null" and new.startswith("b/")):
        return (old[2:] if old != "/dev/null" else old, new[2:] if new != "/dev/null" else new)
    parts_o, parts_n = old.split("/", 1), new.split("/", 1)
    if len(parts_o) == 2 and len(parts_n) == 2 and parts_o[0] != parts_n[0]:
        return parts_o[1], parts_n[1]  # diff -ru qemu.orig qemu
    return old, new


def _parse_diff(text: str, source: str, first_line: int) -> tuple[FileDiff, ...]:
    lines = text.split("\n")
    files: list[FileDiff] = []
    i = 0
    old = new = ""
    hunks: list[Hunk] = []

    def flush() -> None:
        nonlocal hunks
        if old or new:
            files.append(FileDiff(old, new, tuple(hunks)))
        hunks = []

    while i < len(lines):
        line = lines[i]
        if line.startswith("diff --git "):
            flush()
            m = re.match(r"diff --git (\S+) (\S+)", line)
            old, new = _pair(m.group(1), m.group(2)) if m else ("", "")
            i += 1
            continue
        if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            o, n = _pair(_strip(line[4:]), _strip(lines[i + 1][4:]))
            if hunks:
                flush()
            old, new = o, n
            i += 2
            continue
        m = _HUNK.match(line)
        if m:
            if not (old or new):
                raise SourceTreeError(f"{source}:{first_line + i}", "expected ---/+++ file names before the hunk")
            a, b = int(m.group(1)), int(m.group(2) or "1") if m.group(2) is not None else 1
            c, d = int(m.group(3)), int(m.group(4)) if m.group(4) is not None else 1
            where = f"{source}:{first_line + i}"
            body: list[Line] = []
            o_no, n_no = a, c
            left_o, left_n = b, d
            i += 1
            while left_o > 0 or left_n > 0:
                if i >= len(lines):
                    raise SourceTreeError(
                        where, f"hunk {len(hunks) + 1} of {new or old} ends early: expected "
                        f"{left_o} more old and {left_n} more new lines")
                ln = lines[i]
                tag = ln[:1] if ln else " "
                if tag == "\\":
                    i += 1
                    continue
                if tag not in " -+":
                    raise SourceTreeError(
                        f"{source}:{first_line + i}", f"hunk {len(hunks) + 1} of {new or old}: expected a "
                        f"line starting with ' ', '-' or '+' ({left_o} old and {left_n} new lines still due)")
                text_ = ln[1:]
                if tag == " ":
                    body.append(Line(" ", text_, o_no, n_no))
                    o_no, n_no, left_o, left_n = o_no + 1, n_no + 1, left_o - 1, left_n - 1
                elif tag == "-":
                    body.append(Line("-", text_, o_no, 0))
                    o_no, left_o = o_no + 1, left_o - 1
                else:
                    body.append(Line("+", text_, 0, n_no))
                    n_no, left_n = n_no + 1, left_n - 1
                if left_o < 0 or left_n < 0:
                    raise SourceTreeError(where, f"hunk {len(hunks) + 1} of {new or old}: more lines than its header says")
                i += 1
            hunks.append(Hunk(len(hunks) + 1, a, c, m.group(5).strip(), tuple(body), where))
            continue
        i += 1
    flush()
    return tuple(f for f in files if f.hunks or f.old_path == "/dev/null" or f.new_path == "/dev/null")


def _diff_start(body: str) -> int:
    m = re.search(r"^(?:diff --git |--- \S|Index: )", body, re.MULTILINE)
    return m.start() if m else -1


def _messages(text: str) -> list[tuple[int, str]]:
    starts = [m.start() for m in _MBOX_FROM.finditer(text)]
    if not starts or starts[0] != 0:
        if re.match(r"(?:[A-Za-z-]+: .*\n)+", text) and re.search(r"^Subject: ", text, re.MULTILINE):
            starts = [0, *starts]
        elif not starts:
            return []
        else:
            starts = [0, *starts]
    starts.append(len(text))
    return [(starts[j], text[starts[j]:starts[j + 1]]) for j in range(len(starts) - 1)]


def read_patches(text: str, source: str) -> tuple[list[Patch], list[str]]:
    """The patches in ``text``, in order, and the mails skipped (cover letters).

    Parameters
    ----------
    text : str
        A git format-patch mail, an mbox of a series, or a plain unified diff.
    source : str
        Its file name (``-`` for stdin), for messages.

    Raises
    ------
    SourceTreeError
        ``FILE:LINE`` when there is no diff at all or a hunk is malformed.

    Examples
    --------
    >>> diff = "--- a/x.c\\n+++ b/x.c\\n@@ -1,2 +1,2 @@\\n a\\n-b\\n+c\\n"
    >>> patches, skipped = read_patches(diff, "x.diff")
    >>> [(f.path, [ln.tag + ln.text for ln in f.hunks[0].changed]) for f in patches[0].files]
    [('x.c', ['-b', '+c'])]
    """
    text = text.replace("\r\n", "\n")
    messages = _messages(text)
    patches: list[Patch] = []
    skipped: list[str] = []
    if not messages:
        files = _parse_diff(text, source, 1)
        if not files:
            raise SourceTreeError(f"{source}:1", "expected a patch (a git format-patch mail, an mbox "
                                  "series or a unified diff); found no diff")
        return [Patch("", files, text, source)], skipped
    for n, (offset, raw) in enumerate(messages, 1):
        first_line = text.count("\n", 0, offset) + 1
        commit_m = re.match(r"From ([0-9a-f]{40}) ", raw)
        msg = email.message_from_string(raw.partition("\n")[2] if raw.startswith("From ") else raw,
                                        policy=email.policy.default)
        subject = " ".join(str(msg.get("Subject", "")).split())
        payload = msg.get_payload(decode=True) if not msg.is_multipart() else None
        if msg.is_multipart():
            parts = [p.get_payload(decode=True) for p in msg.walk() if p.get_content_maintype() == "text"]
            payload = b"\n".join(p for p in parts if isinstance(p, bytes))
        body = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else str(msg.get_payload())
        start = _diff_start(body)
        where = f"{source} mail {n}"
        if start < 0:
            skipped.append(subject or where)
            continue
        if _COVER.search(subject):
            skipped.append(subject)
            continue
        header_lines = raw.count("\n", 0, raw.find("\n\n") + 2) if "\n\n" in raw else 0
        diff = body[start:]
        body_line = first_line + header_lines + body.count("\n", 0, start)
        files = _parse_diff(diff, source, body_line)
        if not files:
            raise SourceTreeError(f"{source}:{body_line}", f"mail {n} ({subject!r}): expected hunks after the diff header")
        patches.append(Patch(
            subject=re.sub(r"^(?:\[[^\]]*\]\s*)+", "", subject),
            files=files,
            diff=diff if diff.endswith("\n") else diff + "\n",
            source=where if len(messages) > 1 else source,
            commit=commit_m.group(1) if commit_m else "",
            author=str(msg.get("From", "")),
            message_id=str(msg.get("Message-ID", "") or msg.get("Message-Id", "")).strip(),
        ))
    if not patches:
        raise SourceTreeError(f"{source}:1", "expected a patch (a git format-patch mail, an mbox "
                              "series or a unified diff); found mails but no diff in any")
    return patches, skipped
