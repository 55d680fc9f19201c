#!/bin/bash
# Guest script for ../vmtest, run with --hostroot: how long MariaDB writes are blocked by
# `lvsnap create --hold hold-mysql` and by mylvmbackup, in the same VM run (TCG: compare
# the ratio, never absolute times).
#   vmtest -H -m 2048 -d 2G vmtest.d/lvsnap-bench.sh LVSNAP MARIADB_SANDBOX HOLD_MYSQL
# A probe session inserts a row every ~10 ms; the longest gap between consecutive probe
# rows during a run is how long writes were blocked. Prints "lvsnap ..." result lines.
set -u
LV=${1:?lvsnap binary} SB=${2:?mariadb-sandbox} HOLD=${3:?hold-mysql}
N=${LVSNAP_BENCH_VM_RUNS:-5}
disk=${VMTEST_DISKS%% *}
export LVSNAP_STATE_DIR=/tmp/lvsnap-state
pvcreate -q "$disk" && vgcreate -q vg0 "$disk" && lvcreate -q -y -L 700M -n mysql vg0 >/dev/null || exit 10
mkfs.xfs -q -f /dev/vg0/mysql && mkdir -p /mnt/db /tmp/mlb/mnt /tmp/mlb/backup && mount /dev/vg0/mysql /mnt/db || exit 11
eval "$("$SB" start --dir /mnt/db/inst --no-binlog)" || exit 12
Q() { mariadb --no-defaults -u root -S "$MARIADB_SOCKET" -N -e "$1"; }
Q "CREATE DATABASE b; CREATE TABLE b.p (id INT PRIMARY KEY AUTO_INCREMENT, ts DATETIME(6)) ENGINE=InnoDB;
   CREATE TABLE b.m (id INT PRIMARY KEY, v INT) ENGINE=MyISAM;" || exit 13
( while [ ! -f /tmp/probe.stop ]; do echo "INSERT INTO b.p (ts) VALUES (NOW(6));"; sleep 0.01; done \
    | mariadb --no-defaults -u root -S "$MARIADB_SOCKET" ) &
probe=$!
sleep 3
maxgap() { # rows after id $1: the longest gap in ms
  Q "SELECT ROUND(MAX(g)/1000, 1) FROM (SELECT TIMESTAMPDIFF(MICROSECOND, LAG(ts) OVER (ORDER BY id), ts) g FROM b.p WHERE id > $1) x"
}
lastid() { Q "SELECT COALESCE(MAX(id), 0) FROM b.p"; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }
ours=() peer=() held=() base=() whole=()
for i in $(seq 1 "$N"); do
  a=$(lastid); sleep 1; base+=("$(maxgap "$a")")
  a=$(lastid)
  j=$("$LV" create /dev/vg0/mysql --name b$i --size 64M --hold "$HOLD --no-defaults -u root -S $MARIADB_SOCKET" --json) || echo "FAIL: lvsnap create"
  sleep 0.5; ours+=("$(maxgap "$a")")
  held+=("$(echo "$j" | sed -n 's/.*"lock_held_ms":\([0-9.]*\).*/\1/p')")
  "$LV" remove b$i || echo "FAIL: lvsnap remove"
  a=$(lastid)
  "$LV" create /dev/vg0/mysql --name w$i --size 64M --hold-mode whole --hold "$HOLD --no-defaults -u root -S $MARIADB_SOCKET" >/dev/null || echo "FAIL: lvsnap create --hold-mode whole"
  sleep 0.5; whole+=("$(maxgap "$a")")
  "$LV" remove w$i || echo "FAIL: lvsnap remove"
  a=$(lastid)
  mylvmbackup --user=root --socket="$MARIADB_SOCKET" --vgname=vg0 --lvname=mysql --lvsize=64M --xfs \
    --mountdir=/tmp/mlb/mnt --backupdir=/tmp/mlb/backup --relpath=inst --backuptype=none --skip_mycnf --quiet \
    || echo "FAIL: mylvmbackup"
  sleep 0.5; peer+=("$(maxgap "$a")")
  echo "run $i: probe gap lvsnap ${ours[-1]} ms (lock held ${held[-1]} ms), lvsnap --hold-mode whole ${whole[-1]} ms, mylvmbackup ${peer[-1]} ms, idle ${base[-1]} ms"
done
touch /tmp/probe.stop; wait $probe
o=$(printf '%s\n' "${ours[@]}" | median); p=$(printf '%s\n' "${peer[@]}" | median)
h=$(printf '%s\n' "${held[@]}" | median); b=$(printf '%s\n' "${base[@]}" | median)
w=$(printf '%s\n' "${whole[@]}" | median)
awk -v o="$o" -v p="$p" -v n="$N" 'BEGIN {printf "lvsnap lvm writes blocked (MariaDB probe, median of %d, VM): ours %.1f ms, peer mylvmbackup %.1f ms, ratio %.2f (goal <= 0.5)\n", n, o, p, o/p}'
awk -v w="$w" -v p="$p" 'BEGIN {printf "lvsnap lvm writes blocked with --hold-mode whole (lock around the whole lvcreate, the fallback): %.1f ms, ratio %.2f to mylvmbackup\n", w, w/p}'
awk -v h="$h" -v p="$p" -v b="$b" 'BEGIN {printf "lvsnap lvm lock held (lvsnap --hold-mode suspend, as reported) %.1f ms vs mylvmbackup writes blocked %.1f ms: ratio %.2f; probe gap with no snapshot (noise floor): %.1f ms\n", h, p, h/p, b}'
"$SB" stop "$MARIADB_SANDBOX" >/dev/null 2>&1 || true
umount /mnt/db
