#!/usr/bin/env bash
# Opens a real report in headless Chromium: it must render with no error of any kind (script,
# console, blocked fetch — a Content-Security-Policy of default-src 'none' turns any network
# fetch into a reported violation), every chart must have a size on the page, and a screenshot
# is saved. Exit 77 (ctest's skip) when Chromium is not installed.
# Usage: browser_test.sh FOLDPLAN_BINARY SCREENSHOT.png
set -euo pipefail
foldplan=$1
screenshot=$2

browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "SKIP: chromium is not installed (scripts/install-deps.sh installs Debian's chromium)"
  exit 77
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/validation.json" <<'JSON'
{"step": {"predicted_s": 1.20, "measured_s": 1.31},
 "gemm": {"predicted_s": 0.62, "measured_s": 0.66},
 "ep_comm": {"predicted_s": 0.18, "measured_s": 0.22},
 "bubble": {"predicted_s": 0.11, "measured_s": 0.10}}
JSON
"$foldplan" report --model mixtral-8x7b --cluster dgx-h100 --gpus 32 --seq 4096 --gbs 128 \
  --routing zipf:1.2 --validation "$work/validation.json" -o "$work/report.html"

chromium_flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
                --disable-background-networking --disable-component-update --disable-sync
                --disable-dev-shm-usage --hide-scrollbars)

# The probe: the same page with a script that records every error and measures the charts.
probe='<meta http-equiv="Content-Security-Policy" content="default-src '"'none'"'; style-src '"'unsafe-inline'"'; script-src '"'unsafe-inline'"'">
<script>
window.probeErrors = [];
window.addEventListener("error", function (e) {
  probeErrors.push("error: " + (e.message || (e.target && (e.target.src || e.target.href)) || e.type));
}, true);
document.addEventListener("securitypolicyviolation", function (e) {
  probeErrors.push("blocked fetch: " + e.blockedURI);
});
var consoleError = console.error;
console.error = function () { probeErrors.push("console.error: " + Array.from(arguments).join(" ")); };
window.addEventListener("load", function () {
  var svgs = Array.from(document.querySelectorAll("svg"));
  var empty = svgs.filter(function (s) { var b = s.getBoundingClientRect(); return b.width < 100 || b.height < 50; });
  var out = document.createElement("pre");
  out.textContent = "PROBE" + "-RESULT errors=" + probeErrors.length + " svgs=" + svgs.length + " small_svgs=" +
    empty.length + " sections=" + document.querySelectorAll("section").length + "\n" + probeErrors.join("\n");
  document.body.appendChild(out);
});
</script>'
python3 - "$work/report.html" "$work/probe.html" "$probe" <<'PY'
import sys
page, out, probe = sys.argv[1], sys.argv[2], sys.argv[3]
html = open(page, encoding="utf-8").read()
assert '<meta charset="utf-8">' in html
open(out, "w", encoding="utf-8").write(html.replace('<meta charset="utf-8">', '<meta charset="utf-8">\n' + probe, 1))
PY

"$browser" "${chromium_flags[@]}" --user-data-dir="$work/profile-probe" --virtual-time-budget=5000 \
  --dump-dom "file://$work/probe.html" > "$work/dom.html" 2> "$work/probe.log" || {
  cat "$work/probe.log"; echo "FAIL: chromium could not load the page"; exit 1; }
result=$(grep -o 'PROBE-RESULT errors=[^<]*' "$work/dom.html" | head -1 || true)
echo "$result"
if [ -z "$result" ]; then
  echo "FAIL: the probe did not run"; tail -20 "$work/probe.log"; exit 1
fi
# The errors, one a line, follow the result line inside the probe's <pre>.
sed -n '/PROBE-RESULT errors=/,/<\/pre>/p' "$work/dom.html" | sed -n '2,20p' | grep -v '</pre>' || true
case "$result" in
  *"errors=0 svgs=6 small_svgs=0 sections=7"*) ;;
  *) echo "FAIL: expected no errors, 6 charts of real size and 7 sections"; exit 1 ;;
esac

# The screenshot, of the page as shipped, with the console logged to stderr.
"$browser" "${chromium_flags[@]}" --user-data-dir="$work/profile-shot" --enable-logging=stderr \
  --v=0 --window-size=1400,3700 --screenshot="$screenshot" "file://$work/report.html" \
  2> "$work/shot.log" > /dev/null || { cat "$work/shot.log"; echo "FAIL: no screenshot"; exit 1; }
if grep -q 'CONSOLE' "$work/shot.log"; then
  grep 'CONSOLE' "$work/shot.log"; echo "FAIL: console messages"; exit 1
fi
[ -s "$screenshot" ] || { echo "FAIL: empty screenshot"; exit 1; }
echo "PASS: rendered without errors; screenshot $screenshot"
