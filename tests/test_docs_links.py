"""Relative links in README.md and docs/*.md point to files and headings that exist, and the
README's headline table copies its numbers from the results file it names.

Anchors are GitHub's heading slugs: the heading's text (links and inline code reduced to
their text), lower-cased, every character that is not a letter, digit, space, hyphen or
underscore dropped, spaces turned into hyphens; a repeated slug gets -1, -2, ... Links inside
code blocks and code spans are not links, and are ignored.
"""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.DOTALL)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # http:, https:, mailto:, ...


def prose(markdown: str) -> str:
    """The text outside fenced code blocks, with code spans blanked (links there are not links)."""
    return CODE_SPAN.sub(" ", FENCE.sub("", markdown))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links -> their text
    text = text.replace("`", "")
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML tags
    text = re.sub(r"(\*\*|__|\*)", "", text)  # emphasis markers (single _ stays: it is a word char)
    text = "".join(c for c in text.lower() if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    found: set[str] = set()
    counts: dict[str, int] = {}
    for match in HEADING.finditer(FENCE.sub("", markdown)):
        base = slug(match.group(2))
        n = counts.get(base, 0)
        counts[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    found |= set(re.findall(r"<a\s+(?:name|id)=\"([^\"]+)\"", markdown))
    return found


def broken_links(document: Path, root: Path) -> list[str]:
    """Every relative link of `document` whose file or anchor does not exist, as text."""
    text = document.read_text(encoding="utf-8")
    problems = []
    for target in LINK.findall(prose(text)):
        if not target or EXTERNAL.match(target) or target.startswith("//"):
            continue
        path_part, _, anchor = unquote(target).partition("#")
        if path_part.startswith("/"):
            destination = root / path_part.lstrip("/")
        elif path_part:
            destination = document.parent / path_part
        else:
            destination = document
        if not destination.exists():
            problems.append(f"{document.name}: {target}: no such file")
            continue
        if anchor and destination.suffix == ".md" and destination.is_file():
            if anchor not in anchors(destination.read_text(encoding="utf-8")):
                problems.append(f"{document.name}: {target}: no heading with anchor #{anchor}")
    return problems


# ---- the checker itself, on made-up documents

def test_slugs_follow_github():
    assert slug("Quickstart (synthetic, 96×192)") == "quickstart-synthetic-96192"
    assert slug("The paper's study on CamVid") == "the-papers-study-on-camvid"
    assert slug("Running a model on footage: `conversion.run`") == \
        "running-a-model-on-footage-conversionrun"
    assert slug("The browser (LiteRT.js) against Python (ai-edge-litert)") == \
        "the-browser-litertjs-against-python-ai-edge-litert"
    assert slug("See [the docs](docs/x.md) **now**") == "see-the-docs-now"
    assert anchors("# Intro\n## Setup\n### Setup\n```\n# not a heading\n```\n") == \
        {"intro", "setup", "setup-1"}


def test_the_checker_finds_missing_files_and_anchors(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "topic.md").write_text("# Topic\n\n## Real section\n\ntext\n")
    (tmp_path / "data.json").write_text("{}")
    page = tmp_path / "README.md"
    page.write_text(
        "# Title\n\n## Local part\n\n"
        "[ok file](docs/topic.md) [ok anchor](docs/topic.md#real-section) [ok local](#local-part)\n"
        "[ok data](data.json) [ok folder](docs/) ![ok image](docs/topic.md) [web](https://x.org/y)\n"
        "[gone](docs/missing.md) [bad anchor](docs/topic.md#no-such-section) [bad local](#nowhere)\n"
        "`[in code](docs/ignored.md)`\n\n```\n[in a block](docs/ignored_too.md)\n```\n")
    assert broken_links(page, tmp_path) == [
        "README.md: docs/missing.md: no such file",
        "README.md: docs/topic.md#no-such-section: no heading with anchor #no-such-section",
        "README.md: #nowhere: no heading with anchor #nowhere",
    ]
    relative = docs / "other.md"
    relative.write_text("[up](../data.json) [sibling](topic.md#topic) [wrong](data.json)\n")
    assert broken_links(relative, tmp_path) == ["other.md: data.json: no such file"]


# ---- the real documents

@pytest.mark.parametrize("document", DOCUMENTS, ids=[str(d.relative_to(ROOT)) for d in DOCUMENTS])
def test_relative_links_point_to_existing_files_and_headings(document):
    assert broken_links(document, ROOT) == []


def test_every_docs_page_is_linked_from_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = {unquote(t).partition("#")[0] for t in LINK.findall(prose(readme))}
    missing = [d.name for d in DOCUMENTS[1:] if f"docs/{d.name}" not in linked]
    assert missing == [], f"docs pages the README does not link: {missing}"


def test_the_readme_headline_numbers_come_from_its_results_file():
    """Every cell of the README's headline table appears verbatim in the results file the
    section links to, so a regenerated study cannot leave stale numbers on the front page."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Headline results\n")[1].split("\n## ")[0]
    sources = [t for t in LINK.findall(section) if t.startswith("benchmarks/results/")]
    assert sources, "the headline section must link the results file its numbers come from"
    source = (ROOT / sources[0]).read_text(encoding="utf-8")
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]
    assert 3 <= len(rows) <= 6, f"the headline table has {len(rows)} rows; keep 3 to 6"
    for row in rows:
        for cell in (c.strip() for c in row.strip("|").split("|")):
            for part in (p.strip() for p in cell.replace("**", "").split(" / ")):
                if part not in ("", "—"):
                    assert part in source, f"headline cell {part!r} is not in {sources[0]}"
