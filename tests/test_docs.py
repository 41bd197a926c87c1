"""The README and the man page stay true to the binary: every flag --help lists is documented."""

import re

from conftest import BIN, REPO, run


def help_flags():
    out = run([str(BIN), "--help"], timeout=30, check=True).stdout.decode()
    flags = set(re.findall(r"^\s+(--[a-z0-9-]+)", out, re.M))
    assert len(flags) > 20, out
    return flags


def test_readme_documents_every_flag():
    readme = (REPO / "README.md").read_text()
    missing = sorted(f for f in help_flags() if f not in readme)
    assert not missing, f"flags missing from README.md: {missing}"


def test_readme_shows_the_test_and_run_commands():
    readme = (REPO / "README.md").read_text()
    assert "make test" in readme and "make run" in readme
