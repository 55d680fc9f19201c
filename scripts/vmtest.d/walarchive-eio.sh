#!/bin/bash
# Guest script for ../vmtest: walarchive push onto a disk whose every free block fails
# writes with EIO (device-mapper's error target over exactly the ext4's free blocks, so
# its metadata and journal stay good and only the pushed file's data fails, as on a disk
# that develops bad sectors). The write errors reach walarchive through the final fsync
# only: push must exit 1 naming the cause and leave no final name. (A flusher sharing the
# writer's open file description would have consumed the error: exit 0 over lost data.)
# The same for fetch writing %p: exit 255 (recovery stops), never 0 or 1.
#   vmtest -b target/debug/walarchive -f SEG1 -f SEG2 -d 128M scripts/vmtest.d/walarchive-eio.sh NAME1 NAME2
# (SEG1, SEG2: two WAL segments of one cluster, copied to /vmtest under their names)
# Prints "ok: ..." / "FAIL: ..." lines; exit 0 only if all pass.
set -u
fail=0
ok()   { echo "ok: $*"; }
bad()  { echo "FAIL: $*"; fail=1; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
first=$1 next=$2
set -- $VMTEST_DISKS
d1=$1
W=walarchive
n=$(blockdev --getsz "$d1")
dmsetup create wd --table "0 $n linear $d1 0" || exit 10
mkfs.ext4 -q -F -b 4096 -E nodiscard /dev/mapper/wd || exit 11
mkdir -p /mnt/w && mount /dev/mapper/wd /mnt/w && mkdir /mnt/w/arch || exit 12
# A first push makes the archive's info file and the segment's subdirectory.
check "a push onto the good disk" $W push "/vmtest/$first" "$first" --archive /mnt/w/arch
mkdir /mnt/w/pg_wal
# fetch's source: an archive elsewhere (the guest's /tmp)
mkdir /tmp/arch && $W push "/vmtest/$next" "$next" --archive /tmp/arch || exit 16
umount /mnt/w || exit 13
# Every free block of the filesystem becomes an error region; the rest stays linear.
dumpe2fs /dev/mapper/wd 2>/dev/null | sed -n 's/^  Free blocks: //p' | tr ',' '\n' | tr -d ' ' | grep . |
    awk -F- -v n="$n" '
    { a = $1 * 8; b = (($2 == "" ? $1 : $2) + 1) * 8
      if (a > pos) print pos, a - pos, "linear", dev, pos
      print a, b - a, "error"; pos = b }
    END { if (pos < n) print pos, n - pos, "linear", dev, pos }' dev="$d1" pos=0 > /tmp/table
echo "table: $(wc -l < /tmp/table) segments, $(grep -c error /tmp/table) error"
dmsetup reload wd /tmp/table && dmsetup suspend wd && dmsetup resume wd || exit 14
mount /dev/mapper/wd /mnt/w || exit 15
for mode in lz4 none; do
    $W push "/vmtest/$next" "$next" --archive /mnt/w/arch --compress $mode 2>/tmp/err; rc=$?
    sed "s/^/  push --compress $mode: /" /tmp/err
    check "push --compress $mode onto failing blocks exits 1" test $rc = 1
    check "push --compress $mode names the I/O error" grep -q "I/O error" /tmp/err
    check "push --compress $mode left no final name" bash -c "! ls /mnt/w/arch/*/$next* 2>/dev/null | grep -q ."
done
# restore_command onto the failing disk: never "absent" (1), always "stop recovery" (255)
$W fetch "$next" /mnt/w/pg_wal/RECOVERYXLOG --archive /tmp/arch 2>/tmp/err; rc=$?
sed "s/^/  fetch: /" /tmp/err
check "fetch onto failing blocks exits 255" test $rc = 255
check "fetch names the I/O error" grep -q "I/O error" /tmp/err
check "fetch left no %p" test ! -e /mnt/w/pg_wal/RECOVERYXLOG
umount /mnt/w; dmsetup remove wd
[ $fail = 0 ] && echo "walarchive eio vm: all checks passed"
exit $fail
