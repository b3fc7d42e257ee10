#!/usr/bin/env python3
"""Writes the code blocks of one README section to files, each named by its
first line (a comment: `# WORKSPACE`, `# BUILD`, `# .bazelrc`), so that a
check can build exactly what the README tells users to write.

    tools/readme_blocks.py README.md "<section title>" <output dir>
"""
import pathlib
import re
import sys


def main(readme, title, out):
    text = pathlib.Path(readme).read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    section = text[start:end if end >= 0 else None]
    written = 0
    for block in re.findall(r"```\w*\n(.*?)```", section, re.S):
        name = block.splitlines()[0].lstrip("# ").strip()
        pathlib.Path(out, name).write_text(block)
        written += 1
    if written == 0:
        sys.exit(f"readme_blocks: no code block in section '{title}' of {readme}")


if __name__ == "__main__":
    main(*sys.argv[1:])
