#!/usr/bin/env python3
"""Rewrites the `hdfsftpd --help` block of docs/flags.md from the binary (tests/test_docs.py checks it)."""
import re
import subprocess
import sys
from pathlib import Path

binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/hdfsftpd"
reference = Path(__file__).resolve().parents[2] / "docs" / "flags.md"
out = subprocess.run([binary, "--help"], check=True, capture_output=True, text=True).stdout
block = out[out.index("General:"):]
text = reference.read_text()
new = re.sub(r"(The output of `hdfsftpd --help`:\n\n```\n).*?(```)", lambda m: m.group(1) + block + m.group(2), text,
             count=1, flags=re.S)
reference.write_text(new)
