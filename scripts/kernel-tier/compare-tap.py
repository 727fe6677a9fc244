#!/usr/bin/env python3
"""Compares a test program's TAP output from the real kernel with its output
from the simulator, case by case (migd-conformance, daemons.sh).

usage: compare-tap.py KERNEL_TAP KERNEL_RC SIM_TAP SIM_RC COUNTS_FILE

A TAP case line is 'ok K - <case-name> # <signature>' or 'not ok K - ...'.
Prints one report line per kernel case (kernel result, sim result, agreement;
on a difference both signatures) and writes "PASSED FAILED" to COUNTS_FILE.
Counted: every kernel case (ok / not ok, a planned case that never printed is a
failure) and, for every kernel case, the check that the simulator printed the
same case with the same signature, unless the simulator skipped the case
('ok K - name # SKIP reason': it cannot observe it); such kernel-only cases are
listed with the reason. Cases only the simulator ran are listed but not
counted (the meson suite runs them). A kernel run that did not finish
(no final 'N passed, M failed' line, or a non-zero exit with every case ok)
counts one more failure.
"""
import re
import sys

CASE_RE = re.compile(r"^(ok|not ok) (\d+) - (.*?)(?: # (.*))?$")
PLAN_RE = re.compile(r"^1\.\.(\d+)\s*$")
SUMMARY_RE = re.compile(r"^(\d+) passed, (\d+) failed\s*$")
SKIP_RE = re.compile(r"^SKIP\b\s*(.*)$", re.IGNORECASE)


def parse_tap(path):
    """Returns (plan or None, [(ok, number, name, signature)], summary seen)."""
    plan, cases, summary = None, [], False
    with open(path, encoding="utf-8", errors="replace") as f:
        for raw in f:
            line = raw.rstrip("\r\n").rstrip("\r")
            m = PLAN_RE.match(line)
            if m and plan is None:
                plan = int(m.group(1))
                continue
            m = CASE_RE.match(line)
            if m:
                cases.append((m.group(1) == "ok", int(m.group(2)),
                              m.group(3).strip(), (m.group(4) or "").strip()))
                continue
            if SUMMARY_RE.match(line):
                summary = True
    return plan, cases, summary


def result_word(ok):
    return "ok" if ok else "NOT OK"


def main():
    kernel_path, kernel_rc, sim_path, sim_rc, counts_path = sys.argv[1:6]
    kernel_rc, sim_rc = int(kernel_rc), int(sim_rc)
    k_plan, k_cases, k_summary = parse_tap(kernel_path)
    s_plan, s_cases, _ = parse_tap(sim_path)
    passed = failed = 0

    sim_by_name = {}
    for ok, _, name, sig in s_cases:
        sim_by_name.setdefault(name, []).append((ok, sig))

    if not k_cases:
        print("kernel: the program printed no test cases")
        failed += 1
    if not s_cases:
        print(f"sim: the program printed no test cases (exit {sim_rc})")

    width = max([len(c[2]) for c in k_cases] + [10])
    seen = {}
    for ok, num, name, sig in k_cases:
        passed += 1 if ok else 0
        failed += 0 if ok else 1
        seen[name] = seen.get(name, 0) + 1
        sims = sim_by_name.get(name, [])
        if seen[name] > 1:
            agree, why = False, "case name printed more than once by the kernel run"
            s_word = "-"
        elif not sims:
            agree, why = False, "the simulator has no case of this name"
            s_word = "missing"
        elif len(sims) > 1:
            agree, why = False, "case name printed more than once by the simulator"
            s_word = result_word(sims[0][0])
        elif SKIP_RE.match(sims[0][1]) and not SKIP_RE.match(sig):
            # the simulator cannot observe this case: the kernel's result stands alone
            reason = SKIP_RE.match(sims[0][1]).group(1)
            print(f"  {num:3d} {name:<{width}}  kernel {result_word(ok):<6}  "
                  f"sim skip     kernel only: {reason}")
            continue
        else:
            s_ok, s_sig = sims[0]
            s_word = result_word(s_ok)
            agree = s_sig == sig
            why = "" if agree else "signatures differ"
        passed += 1 if agree else 0
        failed += 0 if agree else 1
        print(f"  {num:3d} {name:<{width}}  kernel {result_word(ok):<6}  "
              f"sim {s_word:<7}  {'agree' if agree else 'DIFFER'}")
        if not agree:
            print(f"        {why}")
            print(f"        kernel: {sig}")
            if len(sims) >= 1:
                print(f"        sim:    {sims[0][1]}")

    if k_plan is not None and len(k_cases) < k_plan:
        missing = k_plan - len(k_cases)
        print(f"kernel: planned {k_plan} cases but printed {len(k_cases)}; "
              f"{missing} missing cases count as failures")
        failed += missing
    if k_plan is None and k_cases:
        print("kernel: no TAP plan line (1..N)")
        failed += 1
    if k_cases and not k_summary:
        print("kernel: no final 'N passed, M failed' line: the program did not finish")
        failed += 1
    elif k_cases and kernel_rc != 0 and all(c[0] for c in k_cases):
        print(f"kernel: every case ok but the program exited with {kernel_rc}")
        failed += 1

    sim_only = [n for n in sim_by_name if n not in seen]
    if sim_only:
        print(f"sim-only cases (not counted here): {', '.join(sim_only)}")

    with open(counts_path, "w", encoding="utf-8") as f:
        f.write(f"{passed} {failed}\n")


if __name__ == "__main__":
    main()
