"""The documentation as the tests read it: README.md and docs/*.md, their commands and links."""

from __future__ import annotations

import re
import shlex
import unicodedata
from pathlib import Path

from tests.conftest import ROOT

README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```.*?^```[ \t]*$", re.MULTILINE | re.DOTALL)


def shell_blocks(page: Path) -> list[str]:
    """A page's ```sh blocks: the commands it tells a user to type."""
    return re.findall(r"^```sh\n(.*?)^```", page.read_text(), re.MULTILINE | re.DOTALL)


def shell_text() -> str:
    """Every ```sh block of README.md and docs/*.md, one after another."""
    return "\n".join(block for page in PAGES for block in shell_blocks(page))


def commands(block: str) -> list[tuple[Path, list[str]]]:
    """(working directory, words) of each simple command in a shell block.

    Continuation lines are joined, comments dropped, and lines split at `&&`, `||`, `|`, `;`,
    `&` and command substitution; leading `NAME=value` assignments are dropped. A `cd DIR`
    moves the working directory of the commands after it in the block.
    """
    found, cwd = [], ROOT
    for line in block.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        command: list[str] = []
        for word in [*lexer, ";"]:
            if word in ("&&", "||", "|", ";", "&", "(", ")", "$"):
                while command and re.fullmatch(r"[A-Za-z_]+=.*", command[0]):
                    command.pop(0)
                if command[:1] == ["cd"]:
                    cwd = (cwd / command[1]).resolve()
                elif command:
                    found.append((cwd, command))
                command = []
            else:
                command.append(word)
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower()
    text = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of a page's headings (repeats get -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#+ (.+)$", FENCE.sub("", page.read_text()), re.MULTILINE):
        anchor = slug(heading)
        found.add(f"{anchor}-{seen[anchor]}" if anchor in seen else anchor)
        seen[anchor] = seen.get(anchor, 0) + 1
    return found


def links(page: Path) -> list[str]:
    """The targets of a page's Markdown links and images that are not web addresses."""
    text = re.sub(r"`[^`\n]*`", "", FENCE.sub("", page.read_text()))
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    return [t for t in targets if not re.match(r"[a-z]+:", t)]
