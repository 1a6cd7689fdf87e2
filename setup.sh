#!/usr/bin/env bash
# Set up tinyfer (.venv with everything training needs) and run the main job.
#   ./setup.sh                      on synthetic MUG-layout demo data (made here, ~20 MB)
#   ./setup.sh PATH/TO/subjects3    on a real MUG copy (or any dataset layout tinyfer reads)
set -euo pipefail
cd "$(dirname "$0")"
source scripts/venv.sh train
tinyfer=.venv/bin/tinyfer
if [ $# -eq 0 ]; then
  [ -d demo_data/subjects3 ] || "$tinyfer" data synth demo_data
  data=demo_data/subjects3
else
  data="$1"
fi
"$tinyfer" data inspect "$data"
"$tinyfer" data prepare "$data" --out prepared
