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


# Flags of other programs the docs quote: cargo, hadoop, java, curl, scripts/cluster/hdfs-cluster.sh, the bench.
OTHER_PROGRAMS_FLAGS = {"--workspace", "--release", "--no-default-features", "--target-dir", "--glob", "--add-opens",
                        "--no-ftp-skip-pasv-ip", "--owner", "--secure", "--ha", "--quick", "--only", "--output",
                        "--runs", "--size-mib", "--audit", "--clients", "--hold", "--conf", "--sessions"}
DOCS = [REPO / "README.md", REPO / "SECURITY.md", REPO / "BENCHMARKS.md", *sorted((REPO / "docs").glob("*.md"))]


def test_flag_reference_is_the_output_of_help():
    reference = (REPO / "docs" / "flags.md").read_text()
    block = re.search(r"The output of `hdfsftpd --help`:\n\n```\n(.*?)```", reference, re.S)
    assert block, "docs/flags.md has no --help block"
    out = help_text()
    assert block.group(1) == out[out.index("General:"):], "docs/flags.md's --help block differs from `hdfsftpd --help`: run scripts/release/make-flag-reference.py"


def test_docs_name_only_flags_that_exist():
    known = help_flags()
    for doc in DOCS:
        named = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]+)", doc.read_text()))
        unknown = sorted(named - known - OTHER_PROGRAMS_FLAGS)
        assert not unknown, f"{doc.relative_to(REPO)} names flags hdfsftpd --help does not know: {unknown}"


def test_readme_is_short_and_its_links_and_files_exist():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 300, "README.md is over 300 lines: move detail to docs/"
    targets = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", readme)
    paths = re.findall(r"`((?:scripts|tests|test-data|docs|src|ffi)/[\w./-]+)`", readme)
    assert targets and paths
    missing = sorted(p for p in set(targets + paths) if not (REPO / p).exists())
    assert not missing, f"README.md names files that do not exist: {missing}"


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


def test_settings_are_read_only_through_their_typed_constants():
    """A setting is named once, in its table's constant (src/settings.rs); code reads it with
    `settings.get(&CONSTANT)` and names it in errors with `CONSTANT.error(...)`, never by a string."""
    by_string = re.compile(r"\.(?:given|require|string|strings|switch|yes_no|parsed|seconds|path|required_path)"
                           r"\(\s*\"|ConfigError::new\(\s*\"[a-z]")
    found = [f"{path.relative_to(REPO)}:{number}: {line.strip()}"
             for path in sorted((REPO / "src").rglob("*.rs")) if path.name != "settings.rs"
             for number, line in enumerate(path.read_text().splitlines(), 1) if by_string.search(line)]
    assert not found, "settings looked up or named by a string literal outside their table:\n" + "\n".join(found)


def test_defaults_the_docs_quote_are_the_ones_help_shows():
    help_lines = {m.group(1): m.group(2) for m in re.finditer(r"^\s+(--[a-z0-9-]+)[^\n]*?\[([^]\n]*)\]$", help_text(), re.M)}
    quoted = [(doc, flag, default) for doc in DOCS
              for flag, default in re.findall(r"`(--[a-z0-9-]+)`[^`(]*\(default `?([^`:;,)]+)", doc.read_text())]
    assert quoted, "no quoted default found"
    wrong = [f"{doc.relative_to(REPO)}: {flag} default {default}, --help says [{help_lines.get(flag)}]"
             for doc, flag, default in quoted if help_lines.get(flag) != default.strip()]
    assert not wrong, "\n".join(wrong)
