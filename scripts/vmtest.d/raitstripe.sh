#!/bin/bash
# Guest script for ../vmtest: raitstripe reading volumes that give real read errors.
#   vmtest -b target/debug/raitstripe -d 64M -d 64M scripts/vmtest.d/raitstripe.sh
# Volumes 0 and 1 of a 2+1 set live on dm-linear devices over the two disks; then an
# error target replaces 1 MiB in the middle of one, then another 1 MiB of the other (join
# reads on after each bad record), then the same 1 MiB of both (device-mapper's "error"
# target fails every I/O there with EIO, as a bad region of a disk does).
# Prints "ok: ..." / "FAIL: ..." lines; exit 0 only if all pass.
set -u
fail=0
ok()   { echo "ok: $*"; }
bad()  { echo "FAIL: $*"; fail=1; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
step() { echo "== [$(cut -d' ' -f1 /proc/uptime)s] $*"; }
set -- $VMTEST_DISKS
d1=$1 d2=$2
R=raitstripe
echo "kernel $(uname -r), dm $(dmsetup version | awk '/Driver/{print $3}')"

# bad_region NAME DISK [START]: 1 MiB of NAME from sector START (default 8192, i.e. 4-5 MiB
# in) fails with EIO
linear() { dmsetup create "$1" --table "0 $(blockdev --getsz "$2") linear $2 0"; }
bad_region() {
    local n a=${3:-8192}; n=$(blockdev --getsz "$2")
    printf '0 %s linear %s 0\n%s 2048 error\n%s %s linear %s %s\n' $a "$2" $a $((a + 2048)) $((n - a - 2048)) "$2" $((a + 2048)) |
        dmsetup reload "$1" && dmsetup suspend "$1" && dmsetup resume "$1" && blockdev --flushbufs "/dev/mapper/$1"
}

step "split a 20 MB stream over two dm devices and a file"
head -c 20000000 /dev/urandom > /tmp/in
linear v0 "$d1" && linear v1 "$d2" || exit 10
check "split exit 0" $R split /dev/mapper/v0 /dev/mapper/v1 /tmp/v2 < /tmp/in
blockdev --flushbufs /dev/mapper/v0; blockdev --flushbufs /dev/mapper/v1
$R join /dev/mapper/v0 /dev/mapper/v1 /tmp/v2 > /tmp/out 2>/tmp/err
check "join of the whole set gives the stream back, quietly" bash -c 'cmp -s /tmp/in /tmp/out && ! test -s /tmp/err'

step "1 MiB of volume 1 fails with EIO"
bad_region v1 "$d2" || exit 11
check "the region really fails" bash -c '! dd if=/dev/mapper/v1 of=/dev/null bs=64k skip=64 count=16 iflag=direct status=none 2>/dev/null'
$R join /dev/mapper/v0 /dev/mapper/v1 /tmp/v2 > /tmp/out 2>/tmp/err; rc=$?
sed 's/^/  join: /' /tmp/err
check "join exit 0" test $rc = 0
check "join rebuilds the stream exactly" cmp -s /tmp/in /tmp/out
check "join names the volume and the read error" grep -q '/dev/mapper/v1.*Input/output error' /tmp/err
$R verify /dev/mapper/v0 /dev/mapper/v1 /tmp/v2 > /tmp/vout 2>/tmp/err; rc=$?
sed 's/^/  verify: /' /tmp/vout /tmp/err
check "verify exit 3 (repairable)" test $rc = 3
check "verify reports the read error" grep -q 'Input/output error' /tmp/vout
$R rebuild --into 1=/tmp/v1new /dev/mapper/v0 /dev/mapper/v1 /tmp/v2 2>/tmp/err; rc=$?
check "rebuild exit 0" test $rc = 0
$R join /dev/mapper/v0 /tmp/v1new /tmp/v2 > /tmp/out 2>/tmp/err
check "the rebuilt volume joins to the stream, quietly" bash -c 'cmp -s /tmp/in /tmp/out && ! test -s /tmp/err'

step "another 1 MiB of volume 0 fails too (6-7 MiB in): every row still has two readable volumes"
bad_region v0 "$d1" 12288 || exit 12
$R join /dev/mapper/v0 /dev/mapper/v1 /tmp/v2 > /tmp/out 2>/tmp/err; rc=$?
sed 's/^/  join: /' /tmp/err
check "join exit 0" test $rc = 0
check "join rebuilds the stream exactly, reading on after each bad record" cmp -s /tmp/in /tmp/out
check "join tells each volume's 32 unreadable records as one line" bash -c "test \$(wc -l < /tmp/err) = 2 && grep -Eq 'v0: records [0-9]+-[0-9]+ \(32 records from offset [0-9]+\): read error: Input/output error; rebuilt from parity, reading on' /tmp/err && grep -Eq 'v1: records [0-9]+-[0-9]+ \(32 records' /tmp/err"
$R verify /dev/mapper/v0 /dev/mapper/v1 /tmp/v2 > /tmp/vout 2>/tmp/err; rc=$?
sed 's/^/  verify: /' /tmp/vout
check "verify exit 3 (repairable), the two runs listed" bash -c "test $rc = 3 && test \$(wc -l < /tmp/vout) = 2"

step "the same region of volume 0 fails too: more than one parity volume can rebuild"
bad_region v0 "$d1" || exit 13
$R join /dev/mapper/v0 /dev/mapper/v1 /tmp/v2 > /tmp/out 2>/tmp/err; rc=$?
sed 's/^/  join: /' /tmp/err
check "join exit 4 (unrecoverable)" test $rc = 4
check "what join wrote is a true prefix of the stream" bash -c 'cmp -s /tmp/out <(head -c $(stat -c %s /tmp/out) /tmp/in)'
check "and stops before the bad region" test "$(stat -c %s /tmp/out)" -lt 20000000
$R verify /dev/mapper/v0 /dev/mapper/v1 /tmp/v2 > /tmp/vout 2>/tmp/err; rc=$?
check "verify exit 4 (unrecoverable)" test $rc = 4

dmsetup remove v0; dmsetup remove v1
[ $fail = 0 ] && echo "raitstripe vm: all checks passed"
exit $fail
