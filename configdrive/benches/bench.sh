#!/usr/bin/env bash
# Times whole-process drive builds of the multinic fixture and prints ratios:
#   ISO:  our CLI (JSON in, image out) vs genisoimage with Nova's flags on the same
#         rendered tree, each against `cp` of an image of the size it writes;
#   VFAT: our CLI vs Nova's route without a loop mount (truncate + mkfs.vfat +
#         mcopy), against `cp` of a fully written 64 MiB image.
# Usage: configdrive/benches/bench.sh [RUNS]   (needs hyperfine, genisoimage,
# dosfstools, mtools, time; builds the release binaries first)
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/check-tools cargo hyperfine genisoimage mkfs.vfat mcopy /usr/bin/time python3
runs="${1:-200}"
cargo build --release --quiet -p configdrive -p compute
bin="$PWD/target/release/configdrive"
fixture="$PWD/compute/tests/fixtures/multinic.json"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
unset SOURCE_DATE_EPOCH

"$OLDPWD/target/release/compute" render --instance "$fixture" --out tree >/dev/null 2>&1
nova_flags=(-ldots -allow-lowercase -allow-multidot -l -publisher "OpenStack Nova 34.0.0" -quiet -J -r -V config-2)
"$bin" build --instance "$fixture" -o ours.iso
genisoimage -o nova.iso "${nova_flags[@]}" tree
"$bin" build --instance "$fixture" --format vfat -o ours.vfat
head -c "$(stat -c %s ours.iso)" /dev/urandom > same-as-ours.img
head -c "$(stat -c %s nova.iso)" /dev/urandom > same-as-nova.img
head -c $((64 * 1024 * 1024)) /dev/urandom > full-64m.img
sync

common=(--warmup 10 --runs "$runs" --export-json)
hyperfine -N "${common[@]}" iso.json \
  -n ours-iso "$bin build --instance $fixture -o out.iso --force" \
  -n genisoimage "genisoimage -o out-nova.iso -ldots -allow-lowercase -allow-multidot -l -publisher 'OpenStack Nova 34.0.0' -quiet -J -r -V config-2 tree" \
  -n cp-ours-size "cp same-as-ours.img copy1.img" \
  -n cp-nova-size "cp same-as-nova.img copy2.img"
hyperfine "${common[@]}" vfat.json \
  -n ours-vfat "$bin build --instance $fixture --format vfat -o out.vfat --force" \
  -n mkfs-mcopy "rm -f n.vfat && truncate -s 64M n.vfat && mkfs.vfat -n config-2 n.vfat >/dev/null && MTOOLS_SKIP_CHECK=1 mcopy -s -i n.vfat tree/ec2 tree/openstack ::/" \
  -n cp-64m "cp full-64m.img copy3.img"

rss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }
vfat_rss="$(rss "$bin" build --instance "$fixture" --format vfat -o rss.vfat --force)"
iso_rss="$(rss "$bin" build --instance "$fixture" -o rss.iso --force)"
python3 - "$(stat -c %s ours.iso)" "$(stat -c %s nova.iso)" "$(du -k ours.vfat | cut -f1)" "$vfat_rss" "$iso_rss" <<'PY'
import json, sys
ours_size, nova_size, vfat_kib, vfat_rss, iso_rss = sys.argv[1:6]
def load(name):
    return {r["command"]: r for r in json.load(open(name))["results"]}
iso, vfat = load("iso.json"), load("vfat.json")
ms = lambda r: r["mean"] * 1000
print(f"\nISO sizes: ours {ours_size} bytes, genisoimage {nova_size} bytes")
for name, r in {**iso, **vfat}.items():
    cpu = (r["user"] + r["system"]) * 1000
    print(f"  {name:14s} {ms(r):8.3f} ms wall (± {r['stddev'] * 1000:.3f})  {cpu:7.3f} ms CPU")
print("ratios (lower is better for the first named):")
print(f"  ours-iso / cp of our size           {iso['ours-iso']['mean'] / iso['cp-ours-size']['mean']:.2f}x  (target <= 1.5x)")
print(f"  genisoimage / cp of its size        {iso['genisoimage']['mean'] / iso['cp-nova-size']['mean']:.2f}x")
print(f"  genisoimage / ours-iso              {iso['genisoimage']['mean'] / iso['ours-iso']['mean']:.2f}x  (target >= 2.5x)")
print(f"  mkfs.vfat+mcopy / ours-vfat         {vfat['mkfs-mcopy']['mean'] / vfat['ours-vfat']['mean']:.2f}x")
print(f"  ours-vfat / cp of a full 64 MiB     {vfat['ours-vfat']['mean'] / vfat['cp-64m']['mean']:.2f}x")
print(f"  ours-vfat on disk: {vfat_kib} KiB allocated of 65536 KiB")
print(f"  peak RSS of a build: vfat {vfat_rss} KiB, iso {iso_rss} KiB")
PY
