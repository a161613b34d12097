#!/usr/bin/env bash
# There (on the GPU machine, from the repository's root, with .gpu carried; docs/training.md, "Training
# on a GPU machine"): new realistic photos on every core, then the locator fine-tuned on them
# from the committed reference locator with the JAX backend; model.keras, its history and the
# data's description come back through $OUT. Export here: make gpu-export.
set -euo pipefail
# Sized for one 10-minute command: the generator made ~1.4 photos a second a core here, so
# 16 cores should make 7,000 in ~5-6 min (an estimate: not yet run on such a machine).
COUNT=${COUNT:-7000}  # distinct photos with a certificate, never generated before (seed)
SEED=${SEED:-41}
EPOCHS=${EPOCHS:-8}
LEARNING_RATE=${LEARNING_RATE:-3e-4}
PYTHON=${PYTHON:-python3}
OUT=${OUT:?OUT must name the folder whose files come back}
started=$(date +%s)
$PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
	--target /tmp/site .gpu/wheels/*.whl
export PYTHONPATH=/tmp/site:$PWD:$PWD/layer KERAS_BACKEND=${KERAS_BACKEND:-jax}
export TQDM_DISABLE=1 PYTHONUNBUFFERED=1
tar -xzf .gpu/assets.tar.gz -P  # the fonts and textures, where the generator looks
mkdir -p runs/gpu
tar -xzf training/reference/model.tar.gz -C runs/gpu model_card.json
# The reference locator's Keras model lies beside the package (model.keras before 2026-12-06).
cp training/reference/locator.keras runs/gpu/model.keras 2>/dev/null \
	|| cp training/reference/model.keras runs/gpu/model.keras
# The committed locator's architecture (its first blocks may stride instead of pooling).
STRIDED=$($PYTHON -c 'import json, sys; print(json.load(open(sys.argv[1]))["training"]["model"].get("strided_blocks", 0))' runs/gpu/model_card.json)
# The validation set is the one this project chooses on (seed 32), made again here.
$PYTHON -m training generate --out data/v2/val --count 500 --negatives 150 --seed 32
$PYTHON -m training generate --out data/gpu/train-$SEED --count "$COUNT" --seed "$SEED"
echo "data made in $(( $(date +%s) - started )) s"
$PYTHON -m training train-locator --train data/gpu/train-$SEED --val data/v2/val --out runs/gpu/locator \
	--epochs "$EPOCHS" --learning-rate "$LEARNING_RATE" --init-from runs/gpu/model.keras \
	--strided-blocks "$STRIDED"
for f in model.keras history.csv train_config.json train_metrics.json; do
	cp runs/gpu/locator/$f "$OUT/"
done
cp data/gpu/train-$SEED/dataset.json "$OUT/dataset.json"
echo "done in $(( $(date +%s) - started )) s"
