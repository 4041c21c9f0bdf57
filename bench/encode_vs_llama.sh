#!/usr/bin/env bash
# Image / audio encode time, hearth against llama.cpp's llama-mtmd-cli on the same projector and
# media, one fresh process per run, the two engines interleaved (a busy machine slows both alike).
#
# Usage: bench/encode_vs_llama.sh LLAMA_BIN TEXT_MODEL MMPROJ MEDIA THREADS REPS [BUDGET...]
#   LLAMA_BIN   folder with llama-mtmd-cli (tools/build-llama-baseline.sh --mtmd)
#   TEXT_MODEL  a gemma4 text model whose width is the projector's projection_dim (llama-mtmd-cli
#               always runs it after the encoder; e.g. the fixtures' tiny-mm.F32.gguf with a
#               projector from `hearth make-model ... --mmproj-text-width 32`)
#   MEDIA       an image (then one line per BUDGET, default 70 280 1120) or a .wav/.mp3 clip
# Prints one line per run: engine threads budget|audio seconds. llama.cpp's time is its
# "mtmd batch encoding done in N ms" lines (older builds: "slice encoded in"), summed over an audio
# clip's pieces: the encoder only, decoding and preprocessing excluded; hearth's is `hearth
# bench`'s (preprocessing included, file decoding excluded).
set -euo pipefail
llama="$1" text="$2" proj="$3" media="$4" threads="$5" reps="$6"
shift 6
budgets=("$@")
[ ${#budgets[@]} -eq 0 ] && budgets=(70 280 1120)
hearth="${HEARTH:-build/release/src/cli/hearth}"
case "$media" in *.wav | *.mp3 | *.flac) kind=audio budgets=(audio) ;; *) kind=image ;; esac

llama_run() {  # $1: budget or "audio"
  local extra=(--image "$media" --image-max-tokens "$1")
  [ "$kind" = audio ] && extra=(--audio "$media")
  "$llama/llama-mtmd-cli" -m "$text" --mmproj "$proj" "${extra[@]}" -p "Describe this." -n 1 \
    -t "$threads" -c 4096 --temp 0 --jinja 2>&1 |
    awk '/slice encoded in|batch encoding done in/ {
           for (i = 1; i <= NF; ++i) if ($i == "in") ms += $(i + 1) }
         END { if (ms == 0) exit 1; printf "%.3f\n", ms / 1000 }'
}
hearth_run() {
  if [ "$kind" = audio ]; then
    "$hearth" bench --audio "$media" --mmproj "$proj" -r 1 -t "$threads" --json |
      python3 -c 'import json,sys; j=json.load(sys.stdin); print("%.3f" % (j["encode_s_per_audio_s"]*j["audio_s"]))'
  else
    "$hearth" bench --image "$media" --mmproj "$proj" --image-tokens "$1" -r 1 -t "$threads" \
      --json | python3 -c 'import json,sys; print("%.3f" % json.load(sys.stdin)["budgets"][0]["encode_s"])'
  fi
}
for ((r = 0; r < reps; ++r)); do
  for b in "${budgets[@]}"; do
    # Alternate which engine goes first.
    if ((r % 2 == 0)); then
      echo "llama.cpp $threads $b $(llama_run "$b")"
      echo "hearth $threads $b $(hearth_run "$b")"
    else
      echo "hearth $threads $b $(hearth_run "$b")"
      echo "llama.cpp $threads $b $(llama_run "$b")"
    fi
  done
done
