#!/bin/bash
# Guest script for ../vmtest: binlogcut, walarchive push/fetch/verify and mediahdr payload reading files
# with an unreadable block in the middle (device-mapper's error target over one block of
# each file on an ext4, found with filefrag; the page cache dropped), as media with a bad
# sector. Every tool must exit 1 with a message — never die by a signal (SIGBUS through a
# memory map), never exit 0, never leave a partial output.
#   vmtest -b binlogcut -b walarchive -b mediahdr -b filefrag -f SEG -f BINLOG -d 64M \
#       scripts/vmtest.d/read-errors.sh SEG-NAME BINLOG-NAME
# Prints "ok: ..." / "FAIL: ..." lines; exit 0 only if all pass.
set -u
fail=0
ok()   { echo "ok: $*"; }
bad()  { echo "FAIL: $*"; fail=1; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
seg=$1 binlog=$2
set -- $VMTEST_DISKS
d1=$1
n=$(blockdev --getsz "$d1")
dmsetup create rd --table "0 $n linear $d1 0" || exit 10
mkfs.ext4 -q -F -b 4096 /dev/mapper/rd && mkdir -p /mnt/r && mount /dev/mapper/rd /mnt/r || exit 11
cp "/vmtest/$binlog" /mnt/r/binlog && cp "/vmtest/$seg" "/mnt/r/$seg" || exit 12
head -c 5000000 /dev/urandom | mediahdr write --host h --disk /d --level 0 -o /mnt/r/m.media || exit 13
mkdir /mnt/r/arch && walarchive push "/vmtest/$seg" "$seg" --archive /mnt/r/arch --compress none || exit 17
stored=$(ls /mnt/r/arch/*/"$seg"*)
sync
# the physical block (4 KiB) under the middle of FILE
mid_block() {
    local size want
    size=$(stat -c %s "$1"); want=$((size / 4096 / 2))
    filefrag -v "$1" | awk -F'[:. ]+' -v w="$want" '
        $2 ~ /^[0-9]+$/ && NF >= 6 { ls = $3; le = $4; ps = $5; if (w >= ls && w <= le) { print ps + w - ls; exit } }'
}
bad_blocks=$(for f in /mnt/r/binlog "/mnt/r/$seg" /mnt/r/m.media "$stored"; do mid_block "$f"; done | sort -n)
echo "bad blocks: $(echo $bad_blocks)"
check "found a block in each file" test "$(echo "$bad_blocks" | grep -c .)" = 4
pos=0
for b in $bad_blocks; do
    a=$((b * 8))
    [ $a -gt $pos ] && echo "$pos $((a - pos)) linear $d1 $pos"
    echo "$a 8 error"
    pos=$((a + 8))
done > /tmp/table
echo "$pos $((n - pos)) linear $d1 $pos" >> /tmp/table
dmsetup reload rd /tmp/table && dmsetup suspend rd && dmsetup resume rd || exit 14
sync; echo 3 > /proc/sys/vm/drop_caches
check "the binlog's bad block fails" bash -c '! cat /mnt/r/binlog > /dev/null 2>&1'

# runs WHAT CMD...: exit 1 with a message naming the read problem; no signal, no hang
runs() {
    local what=$1; shift
    timeout 20 "$@" > /tmp/out 2>/tmp/err; local rc=$?
    sed "s/^/  $what: /" /tmp/err
    check "$what exits 1 (not a signal, not 0)" test $rc = 1
    check "$what says why" grep -Eq "I/O error|SIGBUS" /tmp/err
}
runs "binlogcut verify" binlogcut verify /mnt/r/binlog
# list reads only event headers: it fails like the others when the bad block holds one,
# and lists the file when the block is inside an event body — but never dies or hangs
timeout 20 binlogcut list /mnt/r/binlog > /tmp/out 2>/tmp/err; rc=$?
sed 's/^/  binlogcut list: /' /tmp/err
check "binlogcut list exits 0 or 1 with the message (rc $rc)" bash -c "[ $rc = 0 ] || { [ $rc = 1 ] && grep -q SIGBUS /tmp/err; }"
runs "binlogcut -o" binlogcut -o /tmp/cut.bin /mnt/r/binlog
check "binlogcut -o left no cut" test ! -e /tmp/cut.bin
mkdir /tmp/arch
runs "walarchive push" walarchive push "/mnt/r/$seg" "$seg" --archive /tmp/arch
check "walarchive push archived nothing" bash -c "! find /tmp/arch -name '$seg*' | grep -q ."
# restore_command: an archived segment that cannot be read is never "absent" (1): 255
timeout 20 walarchive fetch "$seg" /tmp/RECOVERYXLOG --archive /mnt/r/arch > /tmp/out 2>/tmp/err; rc=$?
sed 's/^/  walarchive fetch: /' /tmp/err
check "walarchive fetch of an unreadable archived segment exits 255" test $rc = 255
check "walarchive fetch says why" grep -q "I/O error" /tmp/err
check "walarchive fetch left no %p" test ! -e /tmp/RECOVERYXLOG
timeout 20 walarchive verify --archive /mnt/r/arch > /tmp/out 2>/tmp/err; rc=$?
sed 's/^/  walarchive verify: /' /tmp/out /tmp/err
check "walarchive verify flags the unreadable file (rc $rc)" bash -c "[ $rc != 0 ] && [ $rc -lt 126 ] && grep -q 'I/O error' /tmp/out /tmp/err"
runs "mediahdr payload" mediahdr payload -o /tmp/payload /mnt/r/m.media
check "mediahdr payload left no file" test ! -e /tmp/payload
umount /mnt/r; dmsetup remove rd
[ $fail = 0 ] && echo "read errors vm: all checks passed"
exit $fail
