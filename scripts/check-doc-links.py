#!/usr/bin/env python3
"""Checks that every relative link in README.md and docs/*.md resolves: the file exists and, for a Markdown file, the #anchor names one of its headings (GitHub's slugs).

The docs point into each other and into the code by path; a file moved or a
heading renamed breaks them silently. `make test` runs this (`make check-docs`).
"""
import re, sys, pathlib
root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
def slug(h):
    h = re.sub(r"<[^>]+>", "", h).strip().lower()
    h = re.sub(r"[^\w\- ]", "", h)
    return h.replace(" ", "-")
def anchors(path):
    out, seen, fence = set(), {}, False
    for line in path.read_text().splitlines():
        if line.startswith("```"): fence = not fence; continue
        m = not fence and re.match(r"#{1,6} (.*)", line)
        if m:
            s = slug(m.group(1)); n = seen.get(s, 0); seen[s] = n + 1
            out.add(s if n == 0 else f"{s}-{n}")
    return out
bad = 0
for md in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
    text = re.sub(r"```.*?```", "", md.read_text(), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target): continue
        file, _, frag = target.partition("#")
        dest = (md.parent / file).resolve() if file else md
        if not dest.exists():
            print(f"{md.relative_to(root)}: missing file {target}"); bad += 1; continue
        if frag and dest.suffix == ".md" and frag not in anchors(dest):
            print(f"{md.relative_to(root)}: missing anchor {target}"); bad += 1
print(f"{bad} broken"); sys.exit(1 if bad else 0)
