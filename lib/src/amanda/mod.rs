//! Amanda's media file header: the 32 KiB block in front of every Amanda file on tape,
//! vtape and holding disk (spec: shared/specs/amanda-media.md §1).
//!
//! Pure functions over bytes:
//! * [`parse`] reads a block as Amanda 3.5's `parse_file_header` does — same tokenising,
//!   same tolerance, same field values — and reports what Amanda calls WEIRD as an error
//!   carrying the fields read so far, the reason and the byte offset.
//! * [`Header::to_text`] / [`Header::to_block`] write the exact bytes of Amanda's
//!   `build_header`, with its checks (and a few more: a field Amanda would cut at 255 bytes
//!   or a newline that would break the format is refused, not written).
//! * [`Header::summary`] is Amanda's one-line `summarize_header`.

mod build;
mod parse;
pub mod quote;

pub use build::BuildError;
pub use parse::{parse, Weird};

/// Amanda's header block size on vtapes and holding disks (`DISK_BLOCK_BYTES`).
pub const HEADER_BLOCK: usize = 32 * 1024;

/// Longest value of a string field: Amanda's `dumpfile_t` buffers hold 255 bytes + NUL.
pub const FIELD_MAX: usize = 255;

/// The header types Amanda writes (`filetype_t`), plus `Weird` for a block it rejects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    /// Not an Amanda header (F_WEIRD).
    #[default]
    Weird,
    TapeStart,
    TapeEnd,
    /// A whole dump (F_DUMPFILE, `FILE`).
    File,
    /// A further holding-disk chunk (F_CONT_DUMPFILE, `CONT_FILE`).
    ContFile,
    /// One part of a dump on tape (F_SPLIT_DUMPFILE, `SPLIT_FILE`).
    SplitFile,
    Noop,
}

impl Kind {
    /// The name on media (and in `amanda-parse-header`'s `type=`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Weird => "WEIRD",
            Kind::TapeStart => "TAPESTART",
            Kind::TapeEnd => "TAPEEND",
            Kind::File => "FILE",
            Kind::ContFile => "CONT_FILE",
            Kind::SplitFile => "SPLIT_FILE",
            Kind::Noop => "NOOP",
        }
    }

    /// Amanda's `str2filetype` for the types it accepts.
    pub fn from_name(s: &[u8]) -> Option<Kind> {
        Some(match s {
            b"TAPESTART" => Kind::TapeStart,
            b"TAPEEND" => Kind::TapeEnd,
            b"FILE" => Kind::File,
            b"CONT_FILE" => Kind::ContFile,
            b"SPLIT_FILE" => Kind::SplitFile,
            b"NOOP" => Kind::Noop,
            _ => return None,
        })
    }

    /// A dump (FILE, CONT_FILE, SPLIT_FILE) as opposed to a label or marker.
    pub fn is_dump(self) -> bool {
        matches!(self, Kind::File | Kind::ContFile | Kind::SplitFile)
    }
}

/// A CRC line: CRC-32C of `size` bytes. `crc == 0` means "not recorded".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Crc {
    pub crc: u32,
    pub size: i64,
}

impl std::fmt::Display for Crc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:08x}:{}", self.crc, self.size)
    }
}

/// The fields of Amanda's `dumpfile_t`, named as Amanda (and `amanda-parse-header`) names them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    pub kind: Kind,
    pub datestamp: String,
    /// Host name, or the label for TAPESTART.
    pub name: String,
    /// Disk name, unquoted.
    pub disk: String,
    pub partnum: i32,
    pub totalparts: i32,
    pub dumplevel: i32,
    pub compressed: bool,
    pub comp_suffix: String,
    pub encrypted: bool,
    pub encrypt_suffix: String,
    pub program: String,
    pub application: String,
    pub srvcompprog: String,
    pub clntcompprog: String,
    pub srv_encrypt: String,
    pub clnt_encrypt: String,
    pub srv_decrypt_opt: String,
    pub clnt_decrypt_opt: String,
    pub recover_cmd: String,
    /// Ends in `|` when set (`/bin/gzip -dc |`).
    pub uncompress_cmd: String,
    /// Ends in `|` when set.
    pub decrypt_cmd: String,
    pub cont_filename: String,
    pub is_partial: bool,
    /// Native size in KiB.
    pub orig_size: i64,
    pub native_crc: Crc,
    pub client_crc: Crc,
    pub server_crc: Crc,
    pub dle_str: Option<String>,
    /// Block size written as `bs=<K>k` on the restore line; 0 = no `bs=`. Never read back:
    /// a parsed header has 0 here, as in Amanda.
    pub blocksize: usize,
    /// Fields whose value on media was longer than [`FIELD_MAX`] and was cut (parse only).
    pub truncated: Vec<&'static str>,
}

impl Header {
    /// The fields in `amanda-parse-header`'s order, as (key, value) pairs, `summary` last.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let b = |v: bool| if v { "1" } else { "0" }.to_string();
        vec![
            ("type", self.kind.name().to_string()),
            ("datestamp", self.datestamp.clone()),
            ("name", self.name.clone()),
            ("disk", self.disk.clone()),
            ("partnum", self.partnum.to_string()),
            ("totalparts", self.totalparts.to_string()),
            ("dumplevel", self.dumplevel.to_string()),
            ("compressed", b(self.compressed)),
            ("comp_suffix", self.comp_suffix.clone()),
            ("encrypted", b(self.encrypted)),
            ("encrypt_suffix", self.encrypt_suffix.clone()),
            ("program", self.program.clone()),
            ("application", self.application.clone()),
            ("srvcompprog", self.srvcompprog.clone()),
            ("clntcompprog", self.clntcompprog.clone()),
            ("srv_encrypt", self.srv_encrypt.clone()),
            ("clnt_encrypt", self.clnt_encrypt.clone()),
            ("srv_decrypt_opt", self.srv_decrypt_opt.clone()),
            ("clnt_decrypt_opt", self.clnt_decrypt_opt.clone()),
            ("recover_cmd", self.recover_cmd.clone()),
            ("uncompress_cmd", self.uncompress_cmd.clone()),
            ("decrypt_cmd", self.decrypt_cmd.clone()),
            ("cont_filename", self.cont_filename.clone()),
            ("is_partial", b(self.is_partial)),
            ("orig_size", self.orig_size.to_string()),
            ("native_crc", self.native_crc.to_string()),
            ("client_crc", self.client_crc.to_string()),
            ("server_crc", self.server_crc.to_string()),
            ("dle_present", b(self.dle_str.is_some())),
            ("dle_str", self.dle_str.clone().unwrap_or_default()),
            ("summary", self.summary()),
        ]
    }

    /// Amanda's one-line summary (`summarize_header`), as amrestore prints it.
    pub fn summary(&self) -> String {
        let comp = if self.compressed {
            self.comp_suffix.as_str()
        } else {
            "N"
        };
        let mut s = match self.kind {
            Kind::Weird => return "WEIRD file".into(),
            Kind::Noop => return "NOOP file".into(),
            Kind::TapeStart => {
                return format!("start of tape: date {} label {}", self.datestamp, self.name)
            }
            Kind::TapeEnd => return format!("end of tape: date {}", self.datestamp),
            Kind::File | Kind::ContFile => format!(
                "{}: date {} host {} disk {} lev {} comp {}",
                self.kind.name(),
                self.datestamp,
                self.name,
                quote::quote(&self.disk),
                self.dumplevel,
                comp
            ),
            Kind::SplitFile => {
                let total = if self.totalparts > 0 {
                    self.totalparts.to_string()
                } else {
                    "UNKNOWN".into()
                };
                format!(
                    "split dumpfile: date {} host {} disk {} part {}/{} lev {} comp {}",
                    self.datestamp,
                    self.name,
                    quote::quote(&self.disk),
                    self.partnum,
                    total,
                    self.dumplevel,
                    comp
                )
            }
        };
        let mut add = |k: &str, v: &str| {
            if !v.is_empty() {
                s.push_str(&format!(" {k} {v}"));
            }
        };
        add("program", &self.program);
        if self.encrypt_suffix == "enc" {
            add("crypt", &self.encrypt_suffix);
        }
        add("server_custom_compress", &self.srvcompprog);
        add("client_custom_compress", &self.clntcompprog);
        add("server_encrypt", &self.srv_encrypt);
        add("client_encrypt", &self.clnt_encrypt);
        add("server_decrypt_option", &self.srv_decrypt_opt);
        add("client_decrypt_option", &self.clnt_decrypt_opt);
        s
    }
}

/// A value escaped as `amanda-parse-header` prints it: `\\`, `\n`, `\t`, `\r`, other control
/// bytes as `\xHH`; everything else as it is.
pub fn escape_value(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            '\r' => o.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                o.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => o.push(c),
        }
    }
    o
}

/// True when `first` starts like an Amanda header (`AMANDA: ` or `NETDUMP: `, leading
/// spaces allowed as Amanda's tokenizer allows them). A quick test before a full [`parse`].
pub fn looks_like_header(first: &[u8]) -> bool {
    let t = first
        .iter()
        .position(|&b| b != b' ')
        .map_or(&first[..0], |i| &first[i..]);
    t.starts_with(b"AMANDA: ") || t.starts_with(b"NETDUMP: ")
}

#[cfg(test)]
mod tests;

/// Extend a CRC-32C (Castagnoli, Amanda's header CRC) over `bytes`; start with 0.
pub fn crc_append(crc: u32, bytes: &[u8]) -> u32 {
    crc32c::crc32c_append(crc, bytes)
}
