#!/usr/bin/env bash
# The offline synthetic study of docs/training.md: one embedder, then each preset trained for the
# same fixed budget and evaluated under both protocols on a held-out synthetic set. CPU, seed 0.
# Usage: docs/study_synthetic.sh OUT_DIR [STEPS] [BVH...]
set -euo pipefail
OUT=${1:?output folder}; STEPS=${2:-150}; shift $(( $# >= 2 ? 2 : 1 )); BVH=("$@")
PY=${PYTHON:-python}
mkdir -p "$OUT"
# A licence-free SMPL-layout body and a matching H36M regressor (never the real SMPL).
$PY -c "
import numpy as np, sys
from video2mesh.models.body import synthetic_smpl
from video2mesh.models.training import synthetic_data as S
synthetic_smpl.write('$OUT/smpl', 'NEUTRAL')
np.save('$OUT/J_regressor_h36m.npy', S.synthetic_h36m_regressor(synthetic_smpl.build(0)['J_regressor']))"
BODY=(--smpl-dir "$OUT/smpl" --device cpu)
$PY -m video2mesh.models.training.train train-embedder --out "$OUT/embedder" "${BODY[@]}" ${BVH:+--bvh "${BVH[@]}"} \
    --synthetic-poses 4000 --steps ${EMB_STEPS:-300} --batch 64 --hidden 256 --dropout 0 --optimizer adam --lr 3e-3
SIZE=(--set feature_dim=256 gru_hidden=256 regressor_hidden=256 dyn_hidden_per_group=32)
for P in ${PRESETS:-full baseline no_static no_dynamic no_dynamics_head fc_dynamics}; do
  EXTRA=(); [ "$P" = baseline ] && EXTRA=(--lambda-unc 0)   # VIBE: no uncertainty loss either
  $PY -m video2mesh.models.training.train train --out "$OUT/$P" --preset "$P" --embedder "$OUT/embedder/embedder.pt" \
      --j-regressor-h36m "$OUT/J_regressor_h36m.npy" "${BODY[@]}" "${SIZE[@]}" --steps "$STEPS" --batch 8 \
      --lr 1e-3 --synthetic-videos 32 --synthetic-frames 96 --log-every 10 --ckpt-every 50 "${EXTRA[@]}"
  $PY -m video2mesh.models.training.train eval --checkpoint "$OUT/$P/model.pt" --embedder "$OUT/embedder/embedder.pt" \
      --j-regressor-h36m "$OUT/J_regressor_h36m.npy" "${BODY[@]}" --synthetic-videos 4 --synthetic-frames 64 \
      --out "$OUT/$P/eval.json"
done
