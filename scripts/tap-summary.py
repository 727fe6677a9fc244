#!/usr/bin/env python3
"""Counts test cases in a meson testlog.json: TAP 'ok'/'not ok' lines of each
test's output; a test without TAP lines counts once by its own result."""
import json
import re
import sys

passed = failed = 0
with open(sys.argv[1], encoding="utf-8") as f:
    for line in f:
        if not line.strip():
            continue
        t = json.loads(line)
        out = t.get("stdout") or ""
        oks = len(re.findall(r"^ok \d+", out, re.M))
        bad = len(re.findall(r"^not ok \d+", out, re.M))
        if oks + bad == 0:
            if t.get("result") in ("OK", "EXPECTEDFAIL", "SKIP"):
                passed += 1
            else:
                failed += 1
            continue
        passed += oks
        failed += bad
        # a binary that died after some cases still failed as a whole
        if t.get("result") not in ("OK", "EXPECTEDFAIL") and bad == 0:
            failed += 1
print(passed, failed)
