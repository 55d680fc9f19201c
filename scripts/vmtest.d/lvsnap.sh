#!/bin/bash
# Guest script for ../vmtest: lvsnap's lvm and dm backends on Debian's stock kernel.
#   vmtest -b target/debug/lvsnap -d 2G -d 1G -d 128M scripts/vmtest.d/lvsnap.sh
# Disk 1: LVM (VG vg0, XFS LV with a writer running; exec --freeze; --hold with the lock
# only around LVM's suspend (traced lvcreate) and its failure modes; watch extends; an
# unwatched snapshot overflows -> Invalid; ptrace forbidden -> --hold-mode whole).
# Disk 2: a dm-linear origin with ext4 for the raw dm backend; disk 3: its COW (then two
# slices of it: an 8 MiB COW and a 32 MiB --cow-spare that watch grows it into). SIGKILL
# while the dm origin is suspended: the watchdog must resume it. Prints "ok: ..." / "FAIL: ..." lines; exit 0 only if all pass.
set -u
fail=0
ok()   { echo "ok: $*"; }
bad()  { echo "FAIL: $*"; fail=1; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
step() { echo "== [$(cut -d' ' -f1 /proc/uptime)s] $*"; }
set -- $VMTEST_DISKS
d1=$1 d2=$2 d3=$3
LV=lvsnap
running() { grep -lx "$1" /proc/[0-9]*/comm 2>/dev/null; }
echo "kernel $(uname -r), dm $(dmsetup version | awk '/Driver/{print $3}')"

step "lvm: VG, XFS LV, a writer running"
pvcreate -q "$d1" && vgcreate -q vg0 "$d1" && lvcreate -q -y -L 512M -n data vg0 >/dev/null || exit 10
mkfs.xfs -q -f /dev/vg0/data && mkdir -p /mnt/data /mnt/snap /mnt/b /mnt/s && mount /dev/vg0/data /mnt/data || exit 11
dd if=/dev/urandom of=/mnt/data/static bs=1M count=16 status=none; sync
sum_static=$(sha256sum < /mnt/data/static)
mkdir /mnt/data/w
( i=0; while :; do i=$((i+1)); yes "$i" | head -c 65536 > /mnt/data/w/$i.tmp && mv /mnt/data/w/$i.tmp /mnt/data/w/$i \
    || echo "writer error at $i" >> /tmp/writer.err; [ -f /tmp/writer.stop ] && break; done ) &
writer=$!
sleep 2

step "lvm: lvsnap exec --freeze (LVM's suspend freezes), the snapshot is consistent"
cat > /tmp/verify.sh <<'EOF'
#!/bin/bash
# Every completed file on the snapshot has the content the writer gave it.
n=0; badn=0
for f in "$LVSNAP_MOUNT"/w/*; do
  case $f in *.tmp) continue ;; esac
  i=${f##*/}; n=$((n+1))
  [ "$(yes "$i" | head -c 65536 | sha256sum)" = "$(sha256sum < "$f")" ] || badn=$((badn+1))
done
echo "files=$n bad=$badn static=$(sha256sum < "$LVSNAP_MOUNT/static")"
EOF
chmod +x /tmp/verify.sh
out=$($LV exec /dev/vg0/data --size 64M --freeze /mnt/data --json -- /tmp/verify.sh); rc=$?
echo "  $out" | tr '\n' ' '; echo
check "exec exit 0" test $rc = 0
check "snapshot files all consistent" bash -c "echo '$out' | grep -q ' bad=0 '"
check "snapshot saw the writer's files" bash -c "echo '$out' | grep -Eq 'files=[1-9]'"
check "static file checksum on the snapshot" bash -c "echo '$out' | grep -qF 'static=$sum_static'"
check "exec reported a frozen time" bash -c "echo '$out' | grep -Eq '\"frozen_ms\":[0-9.]+'"
check "exec removed the snapshot" test "$(lvs --noheadings -o lv_name vg0 | tr -d ' ' | sort | tr '\n' ' ')" = "data "
check "nothing listed after exec" test -z "$($LV list)"
touch /tmp/writer.stop; wait $writer
check "the writer never saw an error" test ! -s /tmp/writer.err

step "lvm: --hold: the lock is held only around LVM's suspend of the origin (traced lvcreate)"
# A "database": a writer that updates two files under an flock, and a hold command that
# takes that flock and logs what the device-mapper tables looked like when it took and
# released it. Taken before the snapshot (origin still linear, snapshot not active) and
# released after it (snapshot-origin live and resumed, snapshot active).
cat > /tmp/hold.sh <<'EOF2'
#!/bin/bash
exec 9>/tmp/db.lock
flock 9
echo "locked origin=$(dmsetup table vg0-data | awk '{print $3}') snap=$(dmsetup table vg0-$1 2>/dev/null | awk '{print $3}')" >> /tmp/hold.log
echo READY
cat >/dev/null
echo "unlocked origin=$(dmsetup table vg0-data | awk '{print $3}') $(dmsetup info -c --noheadings -o suspended vg0-data) snap=$(dmsetup table vg0-$1 2>/dev/null | awk '{print $3}')" >> /tmp/hold.log
EOF2
chmod +x /tmp/hold.sh
( i=0; while [ ! -f /tmp/w2.stop ]; do i=$((i+1)); flock /tmp/db.lock sh -c "echo $i > /mnt/data/pa; echo $i > /mnt/data/pb"; done ) &
w2=$!
sleep 1
out=$($LV create /dev/vg0/data --name hs --size 64M --hold '/tmp/hold.sh hs' --freeze /mnt/data --json --mount /mnt/snap); rc=$?
echo "  $out"; sed 's/^/  hold.log: /' /tmp/hold.log
check "create --hold exit 0" test $rc = 0
check "lock taken before the snapshot (origin linear, snapshot not active)" test "$(sed -n 1p /tmp/hold.log)" = "locked origin=linear snap="
check "lock released after it (snapshot-origin resumed, snapshot active)" test "$(sed -n 2p /tmp/hold.log)" = "unlocked origin=snapshot-origin Active snap=snapshot"
echo "$out" > /tmp/hs.json
check "lock-held and frozen times reported" grep -Eq '"frozen_ms":[0-9.]+,"lock_held_ms":[0-9.]+' /tmp/hs.json
check "snapshot consistent with the lock (pa = pb = $(cat /mnt/snap/pa))" bash -c '[ -s /mnt/snap/pa ] && cmp -s /mnt/snap/pa /mnt/snap/pb'
umount /mnt/snap; $LV remove hs || bad "remove hs"
touch /tmp/w2.stop; wait $w2

for mode in fails timeout; do
  : > /tmp/hold.log
  case $mode in
    fails) $LV create /dev/vg0/data --name hf --size 16M --hold 'echo no lock >&2; exit 7' 2>/tmp/e; rc=$? ;;
    timeout) $LV create /dev/vg0/data --name hf --size 16M --hold-timeout 1 --hold 'cat >/dev/null' 2>/tmp/e; rc=$? ;;
  esac
  cat /tmp/e
  check "hold $mode while lvcreate waits at the suspend: exit 1, snapshot removed, origin active" \
    test $rc = 1 -a -z "$($LV list)" -a -z "$(lvs --noheadings -o lv_name vg0/hf 2>/dev/null)" \
    -a "$(dmsetup table vg0-data | awk '{print $3}')" = linear -a "$(dmsetup info -c --noheadings -o suspended vg0-data)" = Active
done
check "the hold's failure is the message" grep -q "no READY within 1 s" /tmp/e

for at in held suspended; do
  : > /tmp/hold.log
  LVSNAP_TEST_PAUSE=$at $LV create /dev/vg0/data --name k$at --size 16M --hold '/tmp/hold.sh k'$at 2>/tmp/pause.err &
  pid=$!
  for i in $(seq 1 300); do grep -q "paused at $at" /tmp/pause.err && break; sleep 0.1; done
  [ $at = suspended ] && check "paused while the origin is suspended" test "$(dmsetup info -c --noheadings -o suspended vg0-data)" = Suspended
  kill -9 $pid; wait $pid 2>/dev/null
  for i in $(seq 1 300); do [ -z "$(running lvcreate)" ] && grep -q '^unlocked' /tmp/hold.log && break; sleep 0.1; done
  cat /tmp/pause.err; sed 's/^/  hold.log: /' /tmp/hold.log
  check "SIGKILL at $at: lock released" grep -q '^unlocked' /tmp/hold.log
  check "SIGKILL at $at: lvcreate finished, origin active" test -z "$(running lvcreate)" -a "$(dmsetup info -c --noheadings -o suspended vg0-data)" = Active
  check "SIGKILL at $at: leftover listed as incomplete" bash -c "$LV list | grep -q '^k$at.lvm.incomplete'"
  $LV remove k$at || bad "remove k$at"
  check "SIGKILL at $at: removed" test -z "$(lvs --noheadings -o lv_name vg0/k$at 2>/dev/null)" -a -z "$($LV list)"
done

: > /tmp/hold.log
LVSNAP_TEST_PAUSE=held $LV create /dev/vg0/data --name kt --size 16M --hold '/tmp/hold.sh kt' 2>/tmp/pause.err &
pid=$!
for i in $(seq 1 300); do grep -q "paused at held" /tmp/pause.err && break; sleep 0.1; done
kill -TERM $pid; wait $pid; rc=$?
cat /tmp/pause.err; sed 's/^/  hold.log: /' /tmp/hold.log
check "SIGTERM while held: dies by it after undoing: lock released, lvcreate let finish, snapshot removed" \
  test $rc = 143 -a -n "$(grep '^unlocked' /tmp/hold.log)" -a -z "$(running lvcreate)" -a -z "$($LV list)" \
  -a -z "$(lvs --noheadings -o lv_name vg0/kt 2>/dev/null)" -a "$(dmsetup info -c --noheadings -o suspended vg0-data)" = Active

step "lvm: bad input"
$LV create /dev/vg0/data --name s0 --size 64M --freeze /mnt 2>/tmp/e; rc=$?
check "--freeze on another filesystem refused" test $rc = 1 -a "$(cat /tmp/e)" = "lvsnap: /mnt: not a filesystem on /dev/vg0/data"
$LV create /dev/vg0/data --name s0 2>/tmp/e; rc=$?
check "lvm without --size: usage error" test $rc = 2
$LV create /dev/vg0/data --name s0 --size 512k 2>/tmp/e; rc=$?; cat /tmp/e
check "size too small: usage error" test $rc = 2
$LV create /dev/vg0/data --name s0 --size 150% 2>/tmp/e; rc=$?; cat /tmp/e
check "size over 100%: usage error" test $rc = 2
lvcreate -q -y -l 100%FREE -n filler vg0 >/dev/null
: > /tmp/hold.log
$LV create /dev/vg0/data --name s0 --size 64M --hold '/tmp/hold.sh s0' 2>/tmp/e; rc=$?; cat /tmp/e
check "size too big for the VG: clear error, nothing left" test $rc = 1 -a -z "$($LV list)" -a -z "$(lvs --noheadings -o lv_name vg0/s0 2>/dev/null)"
check "lvcreate failed before its suspend: the lock was never taken" test ! -s /tmp/hold.log
lvremove -q -y vg0/filler
$LV create /dev/vg0/data --name data --size 8M 2>/tmp/e; rc=$?; cat /tmp/e
check "name clash with an existing LV refused" test $rc = 1 -a -z "$($LV list)"

step "lvm: SIGKILL after lvcreate -> leftover listed, remove cleans it"
LVSNAP_TEST_PAUSE=snapshot $LV create /dev/vg0/data --name kl --size 16M 2>/tmp/pause.err &
pid=$!
for i in $(seq 1 200); do grep -q 'paused at snapshot' /tmp/pause.err && break; sleep 0.1; done
kill -9 $pid; wait $pid 2>/dev/null
check "leftover LV listed as incomplete" bash -c "$LV list | grep -q '^kl.lvm.incomplete'"
$LV remove kl || bad "remove kl"
check "leftover LV removed" test -z "$(lvs --noheadings -o lv_name vg0/kl 2>/dev/null)" -a -z "$($LV list)"

step "lvm: watch extends a filling snapshot"
$LV create /dev/vg0/data --name wt --size 32M || bad "create wt"
$LV watch wt --extend-at 70% --extend-by 50% --interval 0.5 2>/tmp/watch.err &
watch=$!
dd if=/dev/urandom of=/mnt/data/g bs=1M count=26 conv=fsync status=none
for i in $(seq 1 20); do
  size=$(lvs --noheadings --units m --nosuffix -o lv_size vg0/wt | tr -d ' '); [ "${size%.*}" -gt 32 ] && break; sleep 0.5
done
cat /tmp/watch.err
check "watch extended wt beyond 32M (now ${size}M)" test "${size%.*}" -gt 32
check "wt still valid" $LV status wt
kill -TERM $watch; wait $watch; check "watch dies by SIGTERM" test $? = 143
$LV remove wt || bad "remove wt"

step "lvm: an unwatched snapshot overflows -> Invalid"
$LV create /dev/vg0/data --name ov --size 8M || bad "create ov"
dd if=/dev/urandom of=/mnt/data/h bs=1M count=40 conv=fsync status=none; sync
$LV status ov > /tmp/st 2>/tmp/e; rc=$?; cat /tmp/st /tmp/e
check "status exit 3 and invalid" test $rc = 3 -a "$(cut -f2 /tmp/st)" = invalid
$LV watch ov --once 2>/tmp/e; rc=$?; cat /tmp/e
check "watch fails loudly (exit 3)" bash -c "test $rc = 3 && grep -q 'SNAPSHOT IS INVALID' /tmp/e"
$LV remove ov || bad "remove ov"

step "lvm: rollback merges the snapshot back (lvconvert --merge)"
echo before > /mnt/data/rb.txt; sync
$LV create /dev/vg0/data --name rb --size 64M || bad "create rb"
echo after > /mnt/data/rb.txt; echo new > /mnt/data/rb-new.txt; sync
umount /mnt/data
$LV rollback rb; rc=$?
check "rollback exit 0" test $rc = 0
mount -o nouuid /dev/vg0/data /mnt/data || mount /dev/vg0/data /mnt/data
check "origin content is the snapshot's again" test "$(cat /mnt/data/rb.txt)" = before -a ! -e /mnt/data/rb-new.txt
check "rb merged away (no LV, no record)" test -z "$(lvs --noheadings -o lv_name vg0/rb 2>/dev/null)" -a -z "$($LV list)"
umount /mnt/data

step "lvm: tracing forbidden (Yama ptrace_scope 3) -> --hold-mode whole with a warning"
if [ -w /proc/sys/kernel/yama/ptrace_scope ]; then
  echo 3 > /proc/sys/kernel/yama/ptrace_scope
  : > /tmp/hold.log
  out=$($LV create /dev/vg0/data --name fb --size 16M --hold '/tmp/hold.sh fb' --json 2>/tmp/e); rc=$?; cat /tmp/e
  check "auto falls back to whole, with a warning" bash -c "test $rc = 0 && grep -q 'warning: cannot trace lvcreate' /tmp/e && echo '$out' | grep -q lock_held_ms"
  check "whole: the lock spans lvcreate (snapshot already active at release)" grep -q 'unlocked origin=snapshot-origin Active snap=snapshot' /tmp/hold.log
  $LV remove fb || bad "remove fb"
  $LV create /dev/vg0/data --name fb --size 16M --hold '/tmp/hold.sh fb' --hold-mode suspend 2>/tmp/e; rc=$?; cat /tmp/e
  check "--hold-mode suspend without tracing: exit 1, nothing left" test $rc = 1 -a -z "$($LV list)" -a -z "$(lvs --noheadings -o lv_name vg0/fb 2>/dev/null)"
else
  bad "no /proc/sys/kernel/yama/ptrace_scope in this kernel"
fi

step "dm: raw snapshot of a dm-linear origin with our ioctls"
dmsetup create base --table "0 1048576 linear $d2 0" || exit 20
mkfs.ext4 -q /dev/mapper/base && mount /dev/mapper/base /mnt/b && echo v1 > /mnt/b/file && sync || exit 21
$LV create /dev/mapper/base --name ds --size 10M --cow "$d3" 2>/tmp/e; rc=$?
check "dm with --size: usage error" test $rc = 2
out=$($LV create /dev/mapper/base --name ds --cow "$d3" --freeze /mnt/b --json); rc=$?; echo "  $out"
check "dm create" test $rc = 0
check "dm reports the suspend window as frozen time" bash -c "echo '$out' | grep -Eq '\"frozen_ms\":[0-9.]+'"
dmsetup table | sed 's/^/  table: /'
check "origin is snapshot-origin" bash -c "dmsetup table base | grep -q ' snapshot-origin '"
check "snapshot table P 8" bash -c "dmsetup table ds | grep -Eq ' snapshot [0-9]+:[0-9]+ [0-9]+:[0-9]+ P 8$'"
echo v2 > /mnt/b/file; sync
mount -o ro /dev/mapper/ds /mnt/s || bad "mount ds"
check "snapshot sees v1, origin v2" test "$(cat /mnt/s/file)/$(cat /mnt/b/file)" = v1/v2
umount /mnt/s
$LV status ds --json; check "status of a fresh dm snapshot" $LV status ds
$LV create /dev/mapper/base --name ds2 --cow "$d3" 2>/tmp/e; rc=$?; cat /tmp/e
check "second snapshot of the same origin refused" test $rc = 1
dd if=/dev/urandom of=/mnt/b/big bs=1M count=200 conv=fsync status=none 2>/dev/null; sync
$LV status ds > /tmp/st 2>/tmp/e; rc=$?; cat /tmp/st /tmp/e
check "dm overflow -> status invalid, exit 3" test $rc = 3 -a "$(cut -f2 /tmp/st)" = invalid
$LV remove ds || bad "dm remove"
check "origin back to linear" bash -c "dmsetup table base | grep -q ' linear '"
check "ds and ds-real gone" test -z "$(dmsetup ls | grep -E '^ds')"
check "origin data intact" test "$(cat /mnt/b/file)" = v2

step "dm: rollback merges the snapshot back (snapshot-merge)"
echo before > /mnt/b/file; sync
$LV create /dev/mapper/base --name dr --cow "$d3" || bad "create dr"
echo after > /mnt/b/file; echo new > /mnt/b/new; sync
$LV rollback dr 2>/tmp/e; rc=$?; cat /tmp/e
check "rollback of a mounted origin refused" test $rc = 1 -a "$(cat /tmp/e)" = "lvsnap: /dev/mapper/base: origin is in use (mounted?): unmount it first"
umount /mnt/b
$LV rollback dr; rc=$?
check "dm rollback exit 0" test $rc = 0
dmsetup table | sed 's/^/  table: /'
check "origin back to linear after merge" bash -c "dmsetup table base | grep -q ' linear '"
check "dr and dr-real gone" test -z "$(dmsetup ls | grep -E '^dr')" -a -z "$($LV list)"
mount /dev/mapper/base /mnt/b || bad "mount base after merge"
check "origin content is the snapshot's again" test "$(cat /mnt/b/file)" = before -a ! -e /mnt/b/new

step "dm: SIGKILL while the origin is suspended -> the watchdog resumes it"
LVSNAP_TEST_PAUSE=suspended $LV create /dev/mapper/base --name dk --cow "$d3" 2>/tmp/pause.err &
pid=$!
for i in $(seq 1 100); do grep -q 'paused at suspended' /tmp/pause.err && break; sleep 0.1; done
check "paused while suspended" bash -c "dmsetup info base | grep -q SUSPENDED"
kill -9 $pid; wait $pid 2>/dev/null
for i in $(seq 1 50); do dmsetup info base | grep -q ACTIVE && break; sleep 0.1; done
cat /tmp/pause.err
check "watchdog resumed the origin" bash -c "dmsetup info base | grep -q 'State: *ACTIVE'"
check "writes to the origin work" bash -c "echo v3 > /mnt/b/file && sync"
check "leftover listed" bash -c "$LV list | grep -q '^dk'"
dmsetup table | sed 's/^/  table: /'
$LV remove dk || bad "remove leftover dk"
dmsetup ls; $LV list
check "all clean after remove" test -z "$(dmsetup ls | grep -E '^dk')" -a -z "$($LV list)"
check "origin back to linear after leftover removal" bash -c "dmsetup table base | grep -q ' linear '"
step "dm: watch grows the COW from a --cow-spare device (dm-linear NAME-cow reloaded)"
# Two slices of disk 3: an 8 MiB COW and a 32 MiB spare.
dmsetup create cowa --table "0 16384 linear $d3 0" && dmsetup create cowb --table "0 65536 linear $d3 16384" || bad "cow slices"
echo v4 > /mnt/b/file; sync
$LV create /dev/mapper/base --name dg --cow /dev/mapper/cowb --cow-spare /dev/mapper/cowb 2>/tmp/e; rc=$?; cat /tmp/e
check "spare = COW refused (usage)" test $rc = 2
$LV create /dev/mapper/base --name dg --cow /dev/mapper/cowa --cow-spare /dev/mapper/cowb || bad "create dg"
dmsetup table dg-cow | sed 's/^/  dg-cow: /'
$LV watch dg --extend-at 50% --extend-by 100% --interval 0.3 2>/tmp/watch.err &
watch=$!
# One or two extensions (8 -> 16 [-> 32] MiB) at 50%, never the third that would take the
# rest of the spare before the --once check below: each 1 MiB file costs 1–1.6 MiB of COW
# with XFS's log and metadata (7 files: 7.2 MiB seen; 10 files once reached 16.3 MiB, 51 %
# of 32 MiB, and took the whole spare), so 7 files stay between 4 MiB (half of 8) and
# 16 MiB (half of 32).
for i in $(seq 1 7); do dd if=/dev/urandom of=/mnt/b/g$i bs=1M count=1 conv=fsync status=none; sleep 0.3; done
for i in $(seq 1 40); do [ "$(dmsetup table dg-cow | wc -l)" -ge 2 ] && ! grep -q 'Invalid' <(dmsetup status dg) && [ "$($LV status dg --json | sed -n 's/.*"size":\([0-9]*\).*/\1/p')" -gt 8388608 ] && break; sleep 0.3; done
kill -TERM $watch; wait $watch; wrc=$?
cat /tmp/watch.err; dmsetup table dg-cow | sed 's/^/  dg-cow: /'; $LV status dg --json
check "watch appended a segment of the spare to dg-cow" bash -c "dmsetup table dg-cow | grep -q ' linear $(dmsetup info -c --noheadings -o major,minor --separator : cowb) 0$'"
check "the snapshot sees the bigger COW (status size > 8 MiB) and is valid" bash -c "$LV status dg --json | grep -q '\"state\":\"active\"' && test \$($LV status dg --json | sed -n 's/.*\"size\":\([0-9]*\).*/\1/p') -gt 8388608"
check "watch said so and died by SIGTERM" bash -c "grep -q 'extended by' /tmp/watch.err && test $wrc = 143"
mount -o ro /dev/mapper/dg /mnt/s || bad "mount dg"
check "snapshot content intact after growing (v4, no g1)" test "$(cat /mnt/s/file)" = v4 -a ! -e /mnt/s/g1
umount /mnt/s
$LV watch dg --once --extend-at 1% --extend-by 1000% 2>/tmp/e; rc=$?; cat /tmp/e
check "watch takes the rest of the spare" test $rc = 0
$LV watch dg --once --extend-at 1% --extend-by 1000% 2>/tmp/e; rc=$?; cat /tmp/e
check "spare used up: watch fails loudly (exit 1)" bash -c "test $rc = 1 && grep -q 'used up' /tmp/e"
check "dg-cow = COW + the whole spare (40 MiB)" test "$(dmsetup table dg-cow | awk '{s+=$2} END {print s}')" = 81920
$LV remove dg || bad "remove dg"
check "dg, dg-real, dg-cow gone; origin linear" test -z "$(dmsetup ls | grep -E '^dg')" -a -n "$(dmsetup table base | grep ' linear ')"
dmsetup remove cowa; dmsetup remove cowb
umount /mnt/b; dmsetup remove base

echo "lvsnap vm: $([ $fail = 0 ] && echo all checks passed || echo SOME CHECKS FAILED)"
exit $fail
