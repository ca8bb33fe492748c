"""HTCondor's submit language: what batchkit may write into a submit description, and how.

Every value batchkit writes is checked or quoted here, so that no argument, path, tag or
passthrough command can add a line, a macro reference or a ``queue`` statement:

* a value never spans lines (``single_line``);
* nothing HTCondor would expand as a macro -- ``$(name)``, ``$NAME(...)`` at submit time,
  ``$$(...)`` when the job is matched -- appears in paths (``check_no_macros``); HTCondor's own
  ``$(DOLLAR)`` escape is not used, because runs of dollars expand to match-time ``$$(...)``;
* arguments use the "new" syntax of the condor_submit manual (``quote_arguments``);
* the documented command uses bash ``$'...'`` quoting with ``\\x24`` for ``$``
  (``describe_command``).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from batchkit.errors import SpecError

#: Custom job attributes batchkit sets on every proc (read back by ``find`` and ``query``).
TAG_ATTRIBUTE = "BatchkitTag"
ROW_ATTRIBUTE = "BatchkitRow"

#: Submit commands batchkit must control; ``submit_commands`` may not set them.
RESERVED_COMMANDS = frozenset(
    {
        "executable",
        "arguments",
        "args",
        "transfer_executable",
        "queue",
        "output",
        "error",
        "log",
        "initialdir",
        "should_transfer_files",
        "transfer_input_files",
        "transfer_output_files",
        "transfer_output_remaps",
        "preserve_relative_paths",
        "when_to_transfer_output",
        "batch_name",
        "max_materialize",
        f"my.{TAG_ATTRIBUTE.lower()}",
        f"my.{ROW_ATTRIBUTE.lower()}",
        "my.batchkitindex",
        "my.batchkitattempt",
    }
)

_COMMAND_NAME_RE = re.compile(r"^(\+|MY\.)?[A-Za-z_][A-Za-z0-9_.]*$", re.IGNORECASE)
_TAG_RE = re.compile(r"^[A-Za-z0-9_.:@+-]+$")


def validate_submit_commands(commands: Mapping[str, Any]) -> dict[str, str]:
    """Check the raw passthrough commands: one line each, and none batchkit depends on.

    Values are submit language and are written verbatim (``$(Cluster)`` still expands):
    that is the point of a passthrough. Keys may be ``+Attr`` / ``MY.Attr`` for custom
    job attributes.
    """
    out: dict[str, str] = {}
    for key, value in commands.items():
        if not isinstance(key, str) or not _COMMAND_NAME_RE.match(key):
            raise SpecError(f"htcondor submit_commands: {key!r} is not a submit command name")
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (str, int, float)):
            text = str(value)
        else:
            raise SpecError(f"htcondor submit_commands: value of {key} must be a string, got {value!r}")
        if any(c in text for c in "\n\r\x00"):
            raise SpecError(f"htcondor submit_commands: value of {key} must be a single line, got {text!r}")
        canonical = key.lower()
        if canonical.startswith("+"):
            canonical = "my." + canonical[1:]
        if canonical in RESERVED_COMMANDS or canonical.startswith("bk_"):
            raise SpecError(f"htcondor submit_commands: {key} is set by batchkit and cannot be overridden")
        out[key] = text
    return out


# ----------------------------------------------------------------------------- quoting
_MACRO_RE = re.compile(r"\$(\$|[A-Za-z0-9_.]*\()")


def check_no_macros(text: str, what: str) -> str:
    """``text`` unchanged, or :class:`SpecError` if HTCondor would expand part of it.

    HTCondor expands ``$(name)``, ``$NAME(...)`` at submit time and ``$$(...)`` when the job
    is matched, in every value; a plain ``$`` followed by anything else is literal.
    """
    if _MACRO_RE.search(text):
        raise SpecError(f"htcondor: {what} contains a '$' sequence HTCondor would expand as a macro: {text!r}")
    return text


def single_line(text: str, what: str) -> str:
    """``text`` unchanged, or :class:`SpecError` if it cannot be one submit-file line."""
    if any(c in text for c in "\n\r\x00"):
        raise SpecError(f"htcondor: {what} must not contain a line break or NUL byte: {text!r}")
    if text != text.strip():
        raise SpecError(f"htcondor: {what} must not start or end with white space: {text!r}")
    return text


def quote_arguments(argv: Sequence[str]) -> str:
    """``argv`` in HTCondor's "new" arguments syntax, ready for ``arguments = ...``.

    The rules (condor_submit manual): the whole string is in double quotes, a literal ``"``
    is written ``""``, white space separates arguments, an argument with white space (or a
    single quote, or empty) is put in single quotes, inside which ``'`` is written ``''``.
    Line breaks cannot be expressed, and macro references would be expanded: both raise.
    """
    parts = []
    for arg in argv:
        if any(c in arg for c in "\n\r\x00"):
            raise SpecError(f"htcondor: an argument of the job wrapper contains a line break: {arg!r}")
        check_no_macros(arg, "an argument of the job wrapper")
        quoted = arg.replace('"', '""')
        if not arg or any(c in arg for c in " \t'"):
            quoted = "'" + quoted.replace("'", "''") + "'"
        parts.append(quoted)
    return '"' + " ".join(parts) + '"'


_ANSI_C = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\t": "\\t", "\r": "\\r", "$": "\\x24"}


def describe_command(argv: Sequence[str]) -> str:
    """The argv as one line of shell words, safe as HTCondor item data.

    Used as documentation in the item data: a reader (or ``bash``) gets back exactly the
    argv. Arguments are quoted by :func:`shlex.quote`, except those with control characters
    or ``$``, which use bash's ``$'...'`` with escapes (``\\n``, ``\\x24``): then the line
    has no line break and no ``$`` followed by a name or parenthesis.
    """
    words = []
    for arg in argv:
        if "$" in arg or any(ord(c) < 32 or ord(c) == 127 for c in arg):
            body = "".join(_ANSI_C.get(c, f"\\x{ord(c):02x}" if ord(c) < 32 or ord(c) == 127 else c) for c in arg)
            words.append(f"$'{body}'")
        else:
            words.append(shlex.quote(arg))
    return " ".join(words)


def classad_string(text: str) -> str:
    """A ClassAd string literal for a value known to need no escapes (tags, fixed reasons)."""
    if '"' in text or "\\" in text or any(ord(c) < 32 for c in text):
        raise SpecError(f"htcondor: {text!r} cannot be written as a plain ClassAd string")
    return '"' + text + '"'


def check_tag(tag: str) -> str:
    """The batch tag, if it is safe in a ClassAd string and a constraint (letters, digits, ``_.:@+-``)."""
    if not _TAG_RE.match(tag):
        raise SpecError(f"htcondor: the batch tag {tag!r} may only contain letters, digits and _.:@+-")
    return tag
