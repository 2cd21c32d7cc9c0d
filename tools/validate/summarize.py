#!/usr/bin/env python3
"""Prints the validation matrix as a Markdown table: one row per plan, step time measured and
predicted, the relative error (predicted / measured - 1), then the mean absolute error.

Reads what scripts/validate-matrix.sh leaves: `foldplan validate --json` files
(foldplan.validation/1) or `foldplan run --json` files (foldplan.measured/1).

  python3 tools/validate/summarize.py build/validation/*.validate.json
"""
import json
import os
import sys


def step_times(document):
    """(measured_s, predicted_s) of the step."""
    if document.get("schema", "").startswith("foldplan.validation/"):
        return document["step"]["measured_s"], document["step"]["predicted_s"]
    return document["step_time_s"], document["metadata"]["predicted_step_time_s"]


def class_errors(document):
    """{op class: relative error} of the slowest rank's program (validation files only)."""
    if not document.get("schema", "").startswith("foldplan.validation/"):
        return {}
    errors = {}
    for name, entry in document.items():
        if name == "step" or not isinstance(entry, dict) or "measured_s" not in entry:
            continue
        if entry["measured_s"] > 0:
            errors[name] = entry["predicted_s"] / entry["measured_s"] - 1
    return errors


def main(paths):
    rows = []
    for path in sorted(paths):
        with open(path) as handle:
            document = json.load(handle)
        measured, predicted = step_times(document)
        name = os.path.basename(path).split(".")[0]
        rows.append((name, document.get("device", ""), measured, predicted,
                     predicted / measured - 1, class_errors(document)))
    if not rows:
        print("summarize.py: no result files", file=sys.stderr)
        return 2
    classes = sorted({c for row in rows for c in row[5]})
    header = ["plan", "device", "measured ms", "predicted ms", "error"] + [
        f"{c} error" for c in classes]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] * len(header)) + "|")
    for name, device, measured, predicted, error, per_class in rows:
        cells = [name, device, f"{measured * 1e3:.1f}", f"{predicted * 1e3:.1f}", f"{error:+.1%}"]
        cells += [f"{per_class[c]:+.1%}" if c in per_class else "" for c in classes]
        print("| " + " | ".join(cells) + " |")
    errors = [abs(row[4]) for row in rows]
    print(f"\n{len(rows)} plans: mean absolute step error {sum(errors) / len(errors):.1%}, "
          f"worst {max(errors):.1%}, within 10%: {sum(e <= 0.10 for e in errors)}/{len(rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
