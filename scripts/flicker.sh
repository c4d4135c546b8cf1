#!/usr/bin/env bash
# The flicker figure of docs/performance.md: a still face (examples/grace_hopper.jpg) with fresh
# noise in every frame, so only the detector's landmarks jitter, restored with temporal mode and
# with --no-temporal (x264 --crf 0), and `facerestore flicker` inside the face found in the first
# frame. Release build.
#
#   scripts/flicker.sh MODEL [PARSER|none] [SECONDS]     # e.g. a random-weight v1.4 and ParseNet
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${FACERESTORE_BIN:-.build/release/facerestore}
detector=${FACERESTORE_DETECTOR:-../shared/weights/retinaface_mobilenet0.25_Final.pth}
model=$1
parser=${2:-none}
seconds=${3:-2}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

ffmpeg -v error -loop 1 -framerate 25 -i examples/grace_hopper.jpg -vf "scale=360:-2,crop=320:240:20:20,noise=alls=10:allf=t" \
  -t "$seconds" -r 25 -c:v libx264rgb -qp 0 "$dir/still.mkv"
ffmpeg -v error -i "$dir/still.mkv" -frames:v 1 "$dir/first.png"
region=$("$bin" detect "$dir/first.png" --json --detector "$detector" | python3 -c '
import json, sys
faces = json.load(sys.stdin)[0]["faces"]
x0, y0, x1, y1 = faces[0]["box"]
print(f"{int(x0)},{int(y0)},{int(x1 - x0)},{int(y1 - y0)}")')
if [ "$parser" = none ]; then mask=(--no-parse); else mask=(--parser "$parser"); fi
common=(--model-path "$model" --detector "$detector" "${mask[@]}" --crf 0)
"$bin" restore -i "$dir/still.mkv" -o "$dir/temporal" "${common[@]}" >/dev/null
"$bin" restore -i "$dir/still.mkv" -o "$dir/plain" "${common[@]}" --no-temporal >/dev/null
echo "face region $region"
"$bin" flicker --region "$region" "$dir/still.mkv" "$dir/plain/restored_videos/still.mkv" "$dir/temporal/restored_videos/still.mkv" \
  | sed "s|$dir/||"
