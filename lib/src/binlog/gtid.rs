//! Global transaction ids: MariaDB `domain-server-seq` (Gtid event 162) and MySQL
//! `UUID:GNO` (Gtid event 33), their text forms, and the lists/sets the cut options take.
//!
//! Spec: `shared/specs/mysql-binlog.md` §5.1, §5.3, §8 (`--start-position=D-S-N`,
//! `--include-gtids=SET`). MySQL sets are `UUID:1-5:7,UUID2:3` (intervals inclusive in
//! text); tagged GTIDs (MySQL 8.3+, `UUID:TAG:N`) are recognised but not matched.

use std::fmt;

/// The GTID a group starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gtid {
    /// No GTID event (pre-GTID servers, or a group without one).
    None,
    /// MariaDB Gtid event (162); `flags2` as in spec §5.3.
    Mariadb {
        domain: u32,
        server: u32,
        seq: u64,
        flags2: u8,
    },
    /// MySQL Gtid event (33).
    Mysql { sid: [u8; 16], gno: i64 },
    /// MySQL Anonymous_gtid (34).
    Anonymous,
    /// MySQL Gtid_tagged (42), body not decoded.
    Tagged,
}

/// MariaDB Gtid flags2 bits (spec §5.3).
pub const FL_STANDALONE: u8 = 0x01;

/// Format a MySQL server UUID in its text order with dashes.
pub fn uuid_text(sid: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in sid.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

impl fmt::Display for Gtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gtid::None => write!(f, "-"),
            Gtid::Mariadb {
                domain,
                server,
                seq,
                ..
            } => write!(f, "{domain}-{server}-{seq}"),
            Gtid::Mysql { sid, gno } => write!(f, "{}:{gno}", uuid_text(sid)),
            Gtid::Anonymous => write!(f, "anonymous"),
            Gtid::Tagged => write!(f, "tagged"),
        }
    }
}

/// Decode the GTID of a group-starting event from its type and body.
pub fn decode(type_code: u8, server_id: u32, body: &[u8]) -> Gtid {
    match type_code {
        162 if body.len() >= 13 => Gtid::Mariadb {
            seq: u64::from_le_bytes(body[0..8].try_into().unwrap()),
            domain: u32::from_le_bytes(body[8..12].try_into().unwrap()),
            server: server_id,
            flags2: body[12],
        },
        33 if body.len() >= 25 => {
            let mut sid = [0u8; 16];
            sid.copy_from_slice(&body[1..17]);
            Gtid::Mysql {
                sid,
                gno: i64::from_le_bytes(body[17..25].try_into().unwrap()),
            }
        }
        34 => Gtid::Anonymous,
        42 => Gtid::Tagged,
        _ => Gtid::None,
    }
}

/// A MariaDB GTID `domain-server-seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MariadbGtid {
    pub domain: u32,
    pub server: u32,
    pub seq: u64,
}

/// Parse `D-S-N[,D-S-N…]` (one entry per domain). Errors name the bad entry.
pub fn parse_mariadb_list(s: &str) -> Result<Vec<MariadbGtid>, String> {
    let mut out: Vec<MariadbGtid> = Vec::new();
    for item in s.split(',').map(str::trim) {
        let parts: Vec<&str> = item.split('-').collect();
        let g = match parts.as_slice() {
            [d, sv, n] => match (d.parse(), sv.parse(), n.parse()) {
                (Ok(domain), Ok(server), Ok(seq)) => MariadbGtid {
                    domain,
                    server,
                    seq,
                },
                _ => {
                    return Err(format!(
                        "bad GTID '{item}' (want domain-server-seq, e.g. 0-1-53)"
                    ))
                }
            },
            _ => {
                return Err(format!(
                    "bad GTID '{item}' (want domain-server-seq, e.g. 0-1-53)"
                ))
            }
        };
        if out.iter().any(|o| o.domain == g.domain) {
            return Err(format!("GTID list names domain {} twice", g.domain));
        }
        out.push(g);
    }
    Ok(out)
}

/// True when `s` looks like a MariaDB GTID list rather than a byte offset.
pub fn looks_like_mariadb_gtid(s: &str) -> bool {
    s.contains('-')
}

/// Inclusive GNO intervals of one server UUID.
pub type SidIntervals = ([u8; 16], Vec<(i64, i64)>);

/// A MySQL GTID set: per server UUID, inclusive intervals of GNOs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GtidSet {
    pub sids: Vec<SidIntervals>,
}

fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let hex: String = s.chars().filter(|&c| c != '-').collect();
    if hex.len() != 32 || s.len() != 36 && s.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl GtidSet {
    /// Parse `UUID:1-5:7[,UUID:…]` (whitespace and newlines ignored, as MySQL does).
    pub fn parse(s: &str) -> Result<GtidSet, String> {
        let mut set = GtidSet::default();
        let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        if clean.is_empty() {
            return Ok(set);
        }
        for item in clean.split(',') {
            let mut parts = item.split(':');
            let u = parts.next().unwrap_or("");
            let sid = parse_uuid(u).ok_or_else(|| format!("bad server UUID '{u}' in GTID set"))?;
            let mut ivs = Vec::new();
            for p in parts {
                let (a, b) = match p.split_once('-') {
                    Some((a, b)) => (a, b),
                    None => (p, p),
                };
                let (a, b): (i64, i64) = match (a.parse(), b.parse()) {
                    (Ok(a), Ok(b)) if a >= 1 && b >= a => (a, b),
                    _ => {
                        if p.chars()
                            .next()
                            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                        {
                            return Err(format!("tagged GTIDs ('{item}') are not supported"));
                        }
                        return Err(format!("bad interval '{p}' in GTID set"));
                    }
                };
                ivs.push((a, b));
            }
            if ivs.is_empty() {
                return Err(format!(
                    "'{item}' has no interval (want UUID:N or UUID:N-M)"
                ));
            }
            set.sids.push((sid, ivs));
        }
        Ok(set)
    }

    /// True when `sid:gno` is in the set.
    pub fn contains(&self, sid: &[u8; 16], gno: i64) -> bool {
        self.sids
            .iter()
            .any(|(s, ivs)| s == sid && ivs.iter().any(|&(a, b)| a <= gno && gno <= b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mariadb_lists() {
        let l = parse_mariadb_list("0-1-53,2-5-7").unwrap();
        assert_eq!(
            l[0],
            MariadbGtid {
                domain: 0,
                server: 1,
                seq: 53
            }
        );
        assert_eq!(l[1].seq, 7);
        assert!(parse_mariadb_list("0-1").is_err());
        assert!(parse_mariadb_list("0-1-x").is_err());
        assert!(parse_mariadb_list("0-1-2,0-2-3").is_err());
    }

    #[test]
    fn mysql_sets() {
        let s = GtidSet::parse(
            "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:7, 3e11fa47-71ca-11e1-9e33-c80aa9429563:2",
        )
        .unwrap();
        let a = parse_uuid("3E11FA47-71CA-11E1-9E33-C80AA9429562").unwrap();
        assert_eq!(uuid_text(&a), "3e11fa47-71ca-11e1-9e33-c80aa9429562");
        assert!(s.contains(&a, 1) && s.contains(&a, 5) && s.contains(&a, 7));
        assert!(!s.contains(&a, 6) && !s.contains(&a, 8));
        assert!(GtidSet::parse("zz:1").is_err());
        assert!(GtidSet::parse("3E11FA47-71CA-11E1-9E33-C80AA9429562").is_err());
        assert!(GtidSet::parse("3E11FA47-71CA-11E1-9E33-C80AA9429562:5-3").is_err());
        assert!(GtidSet::parse("3E11FA47-71CA-11E1-9E33-C80AA9429562:tag:3").is_err());
    }
}
