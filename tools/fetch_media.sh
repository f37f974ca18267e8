#!/usr/bin/env bash
# Fetch the real, offline test media into .cache/media (idempotent).
#   - Debian opencv-doc: pedestrian video vtest.avi (768x576 MPEG-4), photos, text images
#   - Debian darknet:    classic detection photos (dog.jpg, person.jpg, horses.jpg, ...)
# Packages are downloaded and unpacked with dpkg -x (nothing is installed system-wide).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
media="$root/.cache/media"
debs="$media/debs"
mkdir -p "$debs"
if [ -f "$media/vtest.avi" ] && [ -f "$media/dog.jpg" ]; then
  exit 0
fi
cd "$debs"
if ! apt-get download opencv-doc darknet >/dev/null 2>&1; then
  apt-get update -qq >/dev/null
  apt-get download opencv-doc darknet >/dev/null
fi
rm -rf "$debs/x" && mkdir -p "$debs/x"
for deb in "$debs"/*.deb; do dpkg -x "$deb" "$debs/x"; done
cp "$debs"/x/usr/share/doc/opencv-doc/examples/data/{vtest.avi,Megamind.avi,messi5.jpg,text_motion.jpg,imageTextN.png} "$media/"
cp "$debs"/x/usr/share/darknet/data/{dog.jpg,person.jpg,horses.jpg,giraffe.jpg,kite.jpg} "$media/"
rm -rf "$debs/x" "$debs"/*.deb
echo "media in $media: $(ls "$media" | grep -v debs | tr '\n' ' ')"
