"""The README, SECURITY.md and the man page stay true to the binary and the code: every flag --help lists
is documented, the README's copy of --help is --help's output, and every check SECURITY.md points at
carries a `// SECURITY:` marker."""

import re

from conftest import BIN, REPO, run

# A place in the code, as SECURITY.md names it: `path` followed by the names of its functions,
# e.g. (`src/storage/local.rs` `open_session`, `real`).
SOURCE_REFERENCE = re.compile(r"`((?:src|ffi)/[\w/]+\.rs)`((?:,?\s+(?:and\s+)?`[A-Za-z_][\w:]*`)*)")


def help_text():
    return run([str(BIN), "--help"], timeout=30, check=True).stdout.decode()


def help_flags():
    out = help_text()
    flags = set(re.findall(r"^\s+(--[a-z0-9-]+)", out, re.M))
    assert len(flags) > 20, out
    return flags


def test_readme_documents_every_flag():
    readme = (REPO / "README.md").read_text()
    missing = sorted(f for f in help_flags() if f not in readme)
    assert not missing, f"flags missing from README.md: {missing}"


def test_readmes_copy_of_help_is_the_output_of_help():
    readme = (REPO / "README.md").read_text()
    block = re.search(r"The output of `hdfsftpd --help`:\n\n```\n(.*?)```", readme, re.S)
    assert block, "README.md has no --help block"
    out = help_text()
    assert block.group(1) == out[out.index("General:"):], "README.md's --help block differs from `hdfsftpd --help`"


def test_readme_shows_the_test_and_run_commands():
    readme = (REPO / "README.md").read_text()
    assert "make test" in readme and "make run" in readme


def marked_functions(path):
    """Names of the functions of `path` with a `SECURITY:` marker in their body or the comments above."""
    lines = (REPO / path).read_text().splitlines()
    marked = set()
    for number, line in enumerate(lines):
        start = re.match(r"(\s*)(?:pub(?:\([\w:]+\))? )?(?:unsafe )?fn (\w+)", line)
        if not start:
            continue
        indent, name = start.groups()
        first = number
        while first > 0 and lines[first - 1].strip().startswith(("//", "#[")):
            first -= 1
        last = next((i for i in range(number, len(lines)) if lines[i] == indent + "}"), number)
        if any("SECURITY:" in text for text in lines[first:last + 1]):
            marked.add(name)
    return marked


def test_security_md_and_the_security_markers_point_at_each_other():
    doc = (REPO / "SECURITY.md").read_text()
    named_files, unmarked = set(), []
    for reference in SOURCE_REFERENCE.finditer(doc):
        path, names = reference.group(1), re.findall(r"`([\w:]+)`", reference.group(2))
        assert (REPO / path).is_file(), f"SECURITY.md names {path}, which does not exist"
        named_files.add(path)
        marked = marked_functions(path)
        unmarked += [f"{path} {name}" for name in names if name.split("::")[-1] not in marked]
    assert not unmarked, f"SECURITY.md names checks without a // SECURITY: marker at them: {unmarked}"
    marker_files = {str(p.relative_to(REPO)) for root in ("src", "ffi/src") for p in (REPO / root).rglob("*.rs")
                    if "SECURITY:" in p.read_text()}
    assert marker_files <= named_files, f"files with SECURITY: markers SECURITY.md does not name: " \
                                        f"{sorted(marker_files - named_files)}"
    documented = set(re.findall(r"`(--[a-z0-9-]+)", doc))
    assert documented <= help_flags(), f"SECURITY.md names flags --help does not know: {documented - help_flags()}"
