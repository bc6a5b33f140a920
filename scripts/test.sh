#!/usr/bin/env bash
# The one test command (README, CI): installs what the suite needs when it is
# missing, then runs every test. Safe to run again; it installs nothing twice.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the cross-process tests start for real, and oneDNN for the optional convolution addon (native/).
debian_packages=(nats-server chromium libdnnl-dev g++)
missing=()
for package in "${debian_packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
# kubectl renders the kustomize overlays; any package that provides the command will do.
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm dependencies, exactly as locked, when node_modules is absent or older than the lock file.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund
fi

# The oneDNN addon Node workers use when it is built (a few seconds; skipped when up to date).
bash native/build.sh

# Static checks in two lanes, one a core (~35 s one after another): the whole tree's type check in one; in the
# other, shared/ once more with neither DOM nor Node types (code both runtimes run imports neither), then lint and
# format (npm run format fixes the format). Each lane's output is printed whole once it is done.
static_logs=$(mktemp -d)
(npx tsc --noEmit -p . >"$static_logs/types" 2>&1) &
types_pid=$!
(npx tsc --noEmit -p shared && npx eslint . && npx prettier --check --log-level warn "**/*.{ts,js,mjs}") >"$static_logs/style" 2>&1 &
style_pid=$!
static=0
wait "$types_pid" || static=1
wait "$style_pid" || static=1
cat "$static_logs/types" "$static_logs/style"
rm -rf "$static_logs"
if [ "$static" -ne 0 ]; then
  echo "static checks failed (type check, lint or format): see above"
  exit 1
fi
mkdir -p test-artifacts
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json=test-artifacts/vitest.json "$@" || status=$?
# A plain closing line any CI can read, from vitest's own counts.
node -e '
  const r = JSON.parse(require("fs").readFileSync("test-artifacts/vitest.json", "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
' || true
exit $status
