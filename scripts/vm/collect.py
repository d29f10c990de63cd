#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Judge a VM test run from the files the guest wrote (scripts/vm/guest.sh).

Usage: collect.py OUTDIR [--results FILE]

A run is red when any of these holds:
  - the guest did not finish (no OUTDIR/done: crash, hang, timeout);
  - a step failed: module load/unload, a KUnit case, a kselftest case, a
    `run` command, a kmemleak report;
  - an expected result is missing: a KUnit suite that does not exist, fewer
    KUnit cases than the suite's plan, a kselftest program that reports no
    result;
  - the kernel log shows a splat (WARNING, BUG, Oops, KASAN, UBSAN, lockdep,
    kmemleak, RCU stall, soft lockup, hung task) anywhere, at boot or during a
    step; each splat is attributed to the step that was running;
  - the kernel becomes tainted by a warning, a bad page, an oops or a
    lockup (checked after every step, so the taint is attributed too).

A step preceded by `expect-red WHAT` inverts this for that step only: it
must be red, and becomes one passing result `runner-catches:WHAT` (or a
failing one if the runner did not notice). When WHAT names a splat kind
(WARNING, BUG, KASAN, UBSAN, lockdep, kmemleak, RCU-stall, soft-lockup),
that kind must be the one recognised. This is how the runner tests itself.

Prints one line per result and a summary; exits 1 if anything failed.
"""

import json
import os
import re
import sys

# Most specific first: the first pattern that matches a line names the splat.
SPLATS = [
    ("KASAN", re.compile(r"BUG: KASAN: |KASAN: .*(out-of-bounds|use-after-free)")),
    ("UBSAN", re.compile(r"UBSAN: ")),
    ("lockdep", re.compile(
        r"WARNING: (possible circular locking|possible recursive locking|"
        r"inconsistent lock state|suspicious RCU usage|bad unlock balance|"
        r"lock held when returning|held lock freed|possible irq lock inversion)|"
        r"INFO: possible irq lock inversion|DEBUG_LOCKS_WARN_ON|"
        r"BUG: sleeping function called from invalid context|"
        r"BUG: (scheduling while atomic|workqueue lockup)")),
    ("kmemleak", re.compile(r"kmemleak: \d+ new suspected memory leak")),
    ("RCU stall", re.compile(r"rcu: INFO: .*detected stall|self-detected stall|"
                             r"rcu_\w+ detected stall")),
    ("soft lockup", re.compile(r"BUG: soft lockup|watchdog: BUG:|"
                               r"blocked for more than \d+ seconds")),
    ("BUG", re.compile(r"\bBUG: |kernel BUG at|Oops: |general protection fault|"
                       r"Kernel panic|Unable to handle kernel|RIP: ")),
    ("WARNING", re.compile(r"WARNING: CPU: \d+ PID: \d+ at |WARNING: .* at .*\+0x|"
                           r"------------\[ cut here \]------------")),
]

# Taint flags that mean something went wrong (kernel/panic.c):
# B bad page (5), D die/oops (7), W warning (9), L soft lockup (14).
BAD_TAINTS = {5: "B (bad page)", 7: "D (oops)", 9: "W (warning)", 14: "L (soft lockup)"}

def bad_taints(taint):
    return [v for bit, v in BAD_TAINTS.items() if taint & (1 << bit)]


KTAP_LINE = re.compile(r"^(\s*)(not ok|ok) (\d+)\s+(.*?)\s*(?:#\s*(SKIP|TODO|XFAIL)\b(.*))?$")
KTAP_PLAN = re.compile(r"^\s*1\.\.(\d+)")


class Result:
    def __init__(self, name, status, detail="", step=None):
        self.name, self.status, self.detail, self.step = name, status, detail, step


def read(path, default=""):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return default


def split_kmsg(dmesg):
    """Map step id -> kernel log lines, plus 'boot' and 'after' segments."""
    segs = {"boot": []}
    cur = "boot"
    for line in dmesg.splitlines():
        m = re.search(r"mshv-step (\d+) (begin|end)", line)
        if m:
            cur = m.group(1) if m.group(2) == "begin" else "after-" + m.group(1)
            segs.setdefault(cur, [])
            continue
        segs.setdefault(cur, []).append(line)
    return segs


def find_splats(lines):
    found = []
    for line in lines:
        for name, rx in SPLATS:
            if rx.search(line):
                text = line.split("] ", 1)[-1].strip()
                found.append((name, text))
                break
    # Report each kind once, with its first line.
    seen, out = set(), []
    for name, text in found:
        if name not in seen:
            seen.add(name)
            out.append((name, text))
    return out


def parse_kunit(suite, log, label=None):
    res, plan, cases = [], None, 0
    # A suite collected twice in a plan (another module parameter) is named
    # with the step's label: kunit:SUITE[LABEL].CASE.
    tag = f"{suite}[{label}]" if label else suite
    for line in log.splitlines():
        m = KTAP_PLAN.match(line)
        if m and plan is None:
            plan = int(m.group(1))
            continue
        m = KTAP_LINE.match(line)
        if not m:
            continue
        indent, ok, _, name, directive, why = m.groups()
        if name == suite and not indent:
            continue  # the suite's own line
        cases += 1
        full = f"kunit:{tag}.{name}"
        if directive == "SKIP":
            res.append(Result(full, "skip", (why or "").strip()))
        elif ok == "ok":
            res.append(Result(full, "pass"))
        else:
            res.append(Result(full, "fail", "KUnit case failed"))
    if plan is None or cases == 0:
        res.append(Result(f"kunit:{tag}", "fail", "suite produced no results"))
    elif cases < plan:
        res.append(Result(f"kunit:{tag}", "fail", f"only {cases} of {plan} cases reported"))
    return res


def parse_kselftest(sel, log, rc):
    """Parse guest.sh's kselftest log: one run_kselftest.sh output per program,
    each after a '### kselftest COL:PROG' line. Within a chunk the nested case
    lines ('# ok N name') belong to that program whatever their order relative
    to the program's own line ('ok 1 selftests: COL: PROG')."""
    res = []
    chunks = re.split(r"^### kselftest (\S+)\n", log, flags=re.M)
    if len(chunks) < 3:
        return [Result(f"kselftest:{sel}", "fail",
                       f"no kselftest result (exit {rc}): " + log.strip()[-200:])]
    for prog, text in zip(chunks[1::2], chunks[2::2]):
        cases, top = [], None
        for line in text.splitlines():
            if line.startswith("# "):
                m = KTAP_LINE.match(line[2:])
                if m and not m.group(1):
                    cases.append(m)
                continue
            m = KTAP_LINE.match(line)
            if m and not m.group(1) and "selftests:" in m.group(4):
                top = m
        failed_cases = 0
        for c in cases:
            _, cok, _, cname, cdir, cwhy = c.groups()
            full = f"{prog}.{cname}"
            if cdir == "SKIP":
                res.append(Result(full, "skip", (cwhy or "").strip()))
            elif cdir == "XFAIL" or cok == "ok":
                res.append(Result(full, "pass"))
            else:
                failed_cases += 1
                res.append(Result(full, "fail", "kselftest case failed"))
        if top is None:
            res.append(Result(prog, "fail", "no result line from run_kselftest.sh"))
            continue
        _, ok, _, _, directive, why = top.groups()
        if not cases:
            # A program without per-case KTAP counts as one test.
            if directive == "SKIP":
                res.append(Result(prog, "skip", (why or "").strip()))
            elif ok == "ok":
                res.append(Result(prog, "pass"))
            else:
                res.append(Result(prog, "fail", "program failed"))
        elif ok != "ok" and directive != "SKIP" and failed_cases == 0:
            res.append(Result(prog, "fail", "program failed outside its test cases"
                              " (timeout or crash?): " + (why or "").strip()))
    return res


def judge_step(step, log, rc):
    words = step.split()
    kind, args = words[0], words[1:]
    if kind == "kunit":
        if rc != 0:
            return [Result(f"kunit:{args[0]}", "fail", log.strip())]
        return parse_kunit(args[0], log, args[1] if len(args) > 1 else None)
    if kind == "kselftest":
        return parse_kselftest(args[0], log, rc)
    if kind in ("insmod", "modprobe"):
        mod = os.path.basename(args[0]).removesuffix(".ko")
        return [Result(f"load:{mod}", "pass" if rc == 0 else "fail", log.strip())]
    if kind == "rmmod":
        return [Result(f"unload:{args[0]}", "pass" if rc == 0 else "fail", log.strip())]
    if kind == "run":
        st = {0: "pass", 4: "skip"}.get(rc, "fail")
        return [Result(f"run:{args[0]}", st, "" if rc == 0 else f"exit {rc}: " + log.strip()[-300:])]
    if kind in ("vfio-device", "vfio-group"):
        return [Result(f"{kind}:{args[0]}", "pass" if rc == 0 else "fail",
                       "" if rc == 0 else log.strip())]
    if kind == "kmemleak":
        if rc != 0:
            return [Result("kmemleak", "fail", log.strip())]
        leaks = log.count("unreferenced object")
        return [Result("kmemleak", "fail" if leaks else "pass",
                       f"{leaks} suspected leak(s): " + log.strip()[:400] if leaks else "")]
    return [Result(f"step:{step}", "fail", f"unknown step (exit {rc})")]


def collect(out):
    results = []
    if not os.path.exists(os.path.join(out, "done")):
        tail = "\n".join(read(os.path.join(out, "console.log")).splitlines()[-15:])
        results.append(Result("vm:finished", "fail",
                              "the guest did not finish (crash, hang or timeout); console tail:\n" + tail))
    steps_dir = os.path.join(out, "steps")
    ids = sorted(f[:-5] for f in os.listdir(steps_dir) if f.endswith(".step")) \
        if os.path.isdir(steps_dir) else []
    dmesg = read(os.path.join(out, "dmesg")) or read(os.path.join(out, "console.log"))
    segs = split_kmsg(dmesg)

    for name, text in find_splats(segs.get("boot", [])):
        results.append(Result(f"splat:boot:{name}", "fail", text))

    expect = None
    prev_taint = int(read(os.path.join(steps_dir, "000.taint"), "0").strip() or 0)
    for name in bad_taints(prev_taint):
        results.append(Result("kernel:taint:boot", "fail", f"tainted at boot: {name}"))
    for sid in ids:
        step = read(os.path.join(steps_dir, sid + ".step")).strip()
        kind = step.split()[0]
        if kind == "expect-red":
            expect = " ".join(step.split()[1:]) or sid
            continue
        rc_text = read(os.path.join(steps_dir, sid + ".rc")).strip()
        log = read(os.path.join(steps_dir, sid + ".log"))
        step_res = []
        if rc_text == "":
            step_res.append(Result(f"step:{step}", "fail", "step did not complete"))
        else:
            step_res = judge_step(step, log, int(rc_text))
        lines = segs.get(sid, []) + segs.get("after-" + sid, [])
        for name, text in find_splats(lines):
            step_res.append(Result(f"splat:{name}", "fail", f"during step {sid} ({step}): {text}"))
        taint = int(read(os.path.join(steps_dir, sid + ".taint"), "0").strip() or 0)
        for name in bad_taints(taint & ~prev_taint):
            step_res.append(Result("kernel:taint", "fail", f"during step {sid} ({step}): {name}"))
        prev_taint = taint
        for r in step_res:
            r.step = sid
        if expect is not None:
            red = [r for r in step_res if r.status == "fail"]
            # For a splat kind, that very kind must have been recognised.
            kind = expect.replace("-", " ").lower()
            if kind in (n.lower() for n, _ in SPLATS):
                red = [r for r in red if r.name.lower() == f"splat:{kind}"]
            if red:
                results.append(Result(f"runner-catches:{expect}", "pass",
                                      "; ".join(f"{r.name}" for r in red)))
            else:
                results.append(Result(f"runner-catches:{expect}", "fail",
                                      f"step {sid} ({step}) was not flagged"))
            expect = None
        else:
            results.extend(step_res)

    return results


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    out = sys.argv[1]
    results = collect(out)
    counts = {"pass": 0, "fail": 0, "skip": 0}
    for r in results:
        counts[r.status] += 1
        tag = {"pass": "ok  ", "fail": "FAIL", "skip": "skip"}[r.status]
        detail = f": {r.detail}" if r.detail and r.status != "pass" else ""
        print(f"{tag} {r.name}{detail}")
    if "--results" in sys.argv:
        path = sys.argv[sys.argv.index("--results") + 1]
        with open(path, "w") as f:
            json.dump([r.__dict__ for r in results], f, indent=1)
    print(f"vm run {os.path.basename(out)}: {counts['pass']} passed, "
          f"{counts['fail']} failed, {counts['skip']} skipped")
    return 1 if counts["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
