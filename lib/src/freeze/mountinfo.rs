//! `/proc/self/mountinfo` as a pure parser, and the lookup of the mount that holds a path.
//!
//! Line format (proc(5), spec `snapshots.md` §2):
//! `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS`; the
//! optional fields end at a lone `-`. ROOT, MOUNTPOINT and SOURCE escape space, tab, newline
//! and backslash as `\040 \011 \012 \134`. Lines that do not parse are skipped, never a
//! panic. The mount of a path is found by `statx`'s mount id (exact, also for bind mounts and
//! btrfs subvolumes); only when the kernel lacks `STATX_MNT_ID` do we fall back to matching
//! `st_dev` with the longest mount-point prefix — wrong for btrfs subvolumes, whose `st_dev`
//! differs from mountinfo's MAJ:MIN, hence only a fallback.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Mount id (field 1), equal to `statx`'s `stx_mnt_id`.
    pub id: u64,
    pub parent: u64,
    /// The superblock's device (field 3): equal for every mount of one filesystem.
    pub dev: (u32, u32),
    /// The directory of the filesystem that is mounted (`/` unless a bind or subvolume).
    pub root: PathBuf,
    pub mount_point: PathBuf,
    pub options: String,
    pub fstype: String,
    pub source: String,
}

/// Undo mountinfo's octal escapes (`\040` etc.); a malformed escape stays as written.
pub fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            if v <= 255 {
                out.push(v as u8);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn path_field(s: &str) -> PathBuf {
    PathBuf::from(OsString::from_vec(unescape(s)))
}

/// Parse one mountinfo line; `None` when it is malformed.
pub fn parse_line(line: &str) -> Option<MountEntry> {
    let mut f = line.split(' ');
    let id = f.next()?.parse().ok()?;
    let parent = f.next()?.parse().ok()?;
    let (maj, min) = f.next()?.split_once(':')?;
    let dev = (maj.parse().ok()?, min.parse().ok()?);
    let root = path_field(f.next()?);
    let mount_point = path_field(f.next()?);
    let options = f.next()?.to_string();
    // Optional fields (shared:N, master:N, ...) until the lone "-".
    loop {
        if f.next()? == "-" {
            break;
        }
    }
    let fstype = f.next()?.to_string();
    let source = String::from_utf8_lossy(&unescape(f.next()?)).into_owned();
    Some(MountEntry {
        id,
        parent,
        dev,
        root,
        mount_point,
        options,
        fstype,
        source,
    })
}

/// Parse a whole mountinfo text, skipping malformed lines.
pub fn parse(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_line).collect()
}

/// The mount whose id is `id`.
pub fn by_id(entries: &[MountEntry], id: u64) -> Option<&MountEntry> {
    entries.iter().find(|e| e.id == id)
}

/// Fallback without mount ids: among the mounts of device `dev`, the one whose mount point is
/// the longest prefix of the canonical path `path` (the last one listed wins a tie: it was
/// mounted on top).
pub fn by_dev_and_prefix<'a>(
    entries: &'a [MountEntry],
    dev: (u32, u32),
    path: &Path,
) -> Option<&'a MountEntry> {
    entries
        .iter()
        .filter(|e| e.dev == dev && path.starts_with(&e.mount_point))
        .max_by_key(|e| (e.mount_point.components().count(), e.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Lines in the shape this machine's kernel writes them (see the module doc).
    const SAMPLE: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
44 27 0:40 / /var/tmp/a\\040b rw,relatime shared:20 master:3 - btrfs /dev/loop0 rw,space_cache=v2,subvolid=5,subvol=/
45 27 0:40 /sub /srv/bind rw,relatime - btrfs /dev/loop0 rw,subvolid=256,subvol=/sub
46 44 7:1 / /var/tmp/a\\040b/x rw - xfs /dev/loop1 rw
garbage line
47 27 7:2 / /no-dash rw ext4 /dev/loop2 rw
";

    #[test]
    fn parses_fields_escapes_and_optional_fields() {
        let v = parse(SAMPLE);
        assert_eq!(v.len(), 5, "garbage and the line without '-' are skipped");
        assert_eq!(v[1].mount_point, Path::new("/"));
        assert_eq!(v[1].fstype, "ext4");
        assert_eq!(v[1].source, "/dev/vda");
        assert_eq!(v[2].mount_point, Path::new("/var/tmp/a b"));
        assert_eq!(v[2].dev, (0, 40));
        assert_eq!(v[2].fstype, "btrfs");
        assert_eq!(v[3].root, Path::new("/sub"));
        assert_eq!(by_id(&v, 45).unwrap().mount_point, Path::new("/srv/bind"));
        assert!(by_id(&v, 99).is_none());
    }

    #[test]
    fn fallback_picks_longest_prefix_on_the_device() {
        let v = parse(SAMPLE);
        let e = by_dev_and_prefix(&v, (0, 40), Path::new("/var/tmp/a b/data/ibdata1")).unwrap();
        assert_eq!(e.id, 44);
        let e = by_dev_and_prefix(&v, (7, 1), Path::new("/var/tmp/a b/x/y")).unwrap();
        assert_eq!(e.id, 46);
        assert!(by_dev_and_prefix(&v, (7, 1), Path::new("/elsewhere")).is_none());
        // "/var/tmp/a bc" is not under "/var/tmp/a b": components, not string prefixes.
        assert!(by_dev_and_prefix(&v, (0, 40), Path::new("/var/tmp/a bc")).is_none());
    }

    #[test]
    fn unescape_keeps_malformed_escapes() {
        assert_eq!(unescape("a\\040b\\011c\\012d\\134e"), b"a b\tc\nd\\e");
        assert_eq!(unescape("x\\04"), b"x\\04");
        assert_eq!(unescape("x\\9zz"), b"x\\9zz");
        assert_eq!(unescape("\\777"), b"\\777");
    }

    #[test]
    fn the_running_kernels_mountinfo_parses() {
        let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let v = parse(&text);
        assert_eq!(v.len(), text.lines().count(), "every real line parses");
        assert!(v.iter().any(|e| e.mount_point == Path::new("/")));
    }
}
