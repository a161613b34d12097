#!/usr/bin/env bash
# Here (make gpu-pack): what a GPU machine of the device tool lacks, in .gpu/ (git-ignored,
# carried): the Keras wheels its image has no copy of, and the generator's typefaces and
# photographic textures (Debian packages here, docs/training.md, "Training data"; that image has none).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
rm -rf .gpu && mkdir -p .gpu/wheels
# The versions this project locks (requirements-dev.lock); JAX, NumPy, Pillow, h5py, rich,
# ml-dtypes and tqdm are in that image already.
for wheel in keras namex optree; do
	version=$(grep -E "^$wheel==" requirements-dev.lock | sed -E 's/^[^=]+==([^ ]+).*/\1/')
	$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
		--implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
		--platform manylinux2014_x86_64 -d .gpu/wheels "$wheel==$version"
done
# Every font and texture file the generator finds here, at the same absolute path, except
# matplotlib's own DejaVu (the image's matplotlib has it).
$PY - <<'PY' > .gpu/assets.txt
import matplotlib
from training.dataset import generator_sources

sources = generator_sources()
paths = set(sources["clutter_fonts"]) | set(sources["textures"])
for pair in sources["number_fonts"].values():
    paths |= {pair["regular"], pair["bold"]}
print("\n".join(sorted(p for p in paths if not p.startswith(matplotlib.get_data_path()))))
PY
tar -czf .gpu/assets.tar.gz -P -T .gpu/assets.txt
du -sh .gpu/wheels .gpu/assets.tar.gz
