#!/usr/bin/env bash
# Set up tinyfer (.venv with everything training needs) and run the main job: the thesis
# pipeline (autoencoder phase, classification phase, augmentation) end to end.
#   ./setup.sh                      on synthetic MUG-layout demo data (made here, ~20 MB)
#   ./setup.sh PATH/TO/subjects3    on a real MUG copy, with configs/mug.yaml
set -euo pipefail
cd "$(dirname "$0")"
source scripts/venv.sh train
tinyfer=.venv/bin/tinyfer
if [ $# -eq 0 ]; then
  [ -d demo_data/subjects3 ] || "$tinyfer" data synth demo_data
  "$tinyfer" data inspect demo_data/subjects3
  "$tinyfer" train configs/demo.yaml --out "runs/demo-$(date +%Y%m%d-%H%M%S)"
else
  "$tinyfer" data inspect "$1"
  "$tinyfer" train configs/mug.yaml --set "data.path=$1" --out "runs/mug-$(date +%Y%m%d-%H%M%S)"
fi
