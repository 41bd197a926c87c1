"""The README and the man page stay true to the binary: every flag --help lists is documented, and the
README's copy of --help is --help's output."""

import re

from conftest import BIN, REPO, run

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
