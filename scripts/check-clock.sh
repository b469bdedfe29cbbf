#!/usr/bin/env bash
# Time is injected (STYLE.md §8): only src/spiffe/clock.ts may read the wall clock or arm timers.
set -euo pipefail
cd "$(dirname "$0")/.."
hits=$(grep -rnE '\b(Date\.now\(\)|new Date\(\)|setTimeout\(|setInterval\(|Math\.random\(\))' src --include='*.ts' \
  | grep -v '\.test\.ts:' | grep -v '^src/spiffe/clock\.ts:' || true)
if [ -n "$hits" ]; then
  echo "check-clock: wall clock, timers or Math.random outside src/spiffe/clock.ts (inject a Clock / random):"
  echo "$hits"
  exit 1
fi
echo "check-clock: ok"
