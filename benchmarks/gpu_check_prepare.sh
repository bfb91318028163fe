#!/usr/bin/env bash
# Prepare, on a machine with internet (PyPI), what benchmarks/gpu_check.sh needs on an offline GPU machine:
#   .whl/         wheels for Python 3.12 x86-64 of what such a machine lacks (detectron2 as our pure-Python
#                 wheel, pycocotools, fvcore, iopath, papermill and the kernel packages, ...)
#   .gpu/tinyvoc/ a copy of the real test images and test.json (../shared/tinyvoc)
# Both folders are git-ignored; carry them to the GPU machine with the repo. Run from the repo root.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PYVER=${GPU_PYTHON_VERSION:-3.12}
rm -rf .whl && mkdir -p .whl
# pure-Python packages that exist only as sdists on PyPI: build them into wheels here
$PY -m pip wheel -q --no-deps -w .whl fvcore==0.1.5.post20221221 antlr4-python3-runtime==4.9.3 hydra-core==1.3.8
# the rest as binary wheels for the GPU machine's Python, with their dependencies
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any)
$PY -m pip download -q --only-binary=:all: --python-version "$PYVER" --implementation cp "${platforms[@]}" \
  -f .whl -d .whl pycocotools==2.0.11 iopath==0.1.9 yacs==0.1.8 omegaconf==2.3.1 termcolor==3.3.0 \
  papermill==2.7.0 nbformat==5.11.1 nbclient==0.11.0 ipykernel==7.4.0
$PY -m pip download -q --only-binary=:all: --python-version "$PYVER" --implementation cp "${platforms[@]}" \
  --no-deps -d .whl gdown==6.5.1 black==26.10.1 beautifulsoup4 soupsieve pytokens pysocks mypy_extensions pathspec
# drop what the GPU image already has (its torch, numpy, requests, ...): two versions of one package break pip
for have in attrs certifi charset_normalizer click idna numpy packaging portalocker psutil pygments python_dateutil \
            pyyaml requests tqdm typing_extensions urllib3; do
  rm -f .whl/"$have"-*.whl
done
# our detectron2 wheel, converted from sal-detectron2 (see notebooks/tinyvoc/runtime/detectron2_install.py)
$PY -c "
from pathlib import Path
from tinyvoc.runtime.detectron2_install import convert_wheel, download_source_wheel
tmp = Path('.whl/_d2'); tmp.mkdir(exist_ok=True)
convert_wheel(download_source_wheel(tmp), Path('.whl'))
" && rm -rf .whl/_d2
# the helper package itself (its notebooks are found in the repo, the folder gpu_check.sh runs from)
$PY -m pip wheel -q --no-deps -w .whl .
rm -rf .gpu && mkdir -p .gpu/tinyvoc
cp -r ../shared/tinyvoc/test.json ../shared/tinyvoc/test_images ../shared/tinyvoc/pascal_train_first10.json \
  ../shared/tinyvoc/train_images .gpu/tinyvoc/
du -sh .whl .gpu
