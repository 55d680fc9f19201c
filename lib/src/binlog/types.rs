//! Every event type code of MySQL (4.x–9.x) and MariaDB (5.5–11.x), with its name and its
//! role in transaction grouping.
//!
//! Spec: `shared/specs/mysql-binlog.md` §5 (table of codes, "group role"), from MariaDB
//! `sql/log_event.h` and MySQL `libbinlogevents/include/binlog_event.h`.

/// How an event takes part in transaction (event group) boundaries (spec §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Outside every group: FDE, Rotate, Stop, Previous_gtids, Gtid_list, ...
    Control,
    /// Starts a group: MySQL Gtid / Anonymous_gtid / Gtid_tagged, MariaDB Gtid.
    GtidStart,
    /// Ends a group: Xid, XA_prepare.
    End,
    /// A Query: start, end or inside depending on its text.
    Query,
    /// Inside a group.
    Inner,
    /// Replication stream only (heartbeats); never in a file.
    Stream,
    /// A code no server we know writes.
    Unknown,
}

pub const START_EVENT_V3: u8 = 1;
pub const QUERY: u8 = 2;
pub const STOP: u8 = 3;
pub const ROTATE: u8 = 4;
pub const INTVAR: u8 = 5;
pub const LOAD: u8 = 6;
pub const CREATE_FILE: u8 = 8;
pub const APPEND_BLOCK: u8 = 9;
pub const EXEC_LOAD: u8 = 10;
pub const DELETE_FILE: u8 = 11;
pub const NEW_LOAD: u8 = 12;
pub const RAND: u8 = 13;
pub const USER_VAR: u8 = 14;
pub const FORMAT_DESCRIPTION: u8 = 15;
pub const XID: u8 = 16;
pub const BEGIN_LOAD_QUERY: u8 = 17;
pub const EXECUTE_LOAD_QUERY: u8 = 18;
pub const TABLE_MAP: u8 = 19;
pub const INCIDENT: u8 = 26;
pub const ROWS_QUERY: u8 = 29;
pub const GTID: u8 = 33;
pub const ANONYMOUS_GTID: u8 = 34;
pub const PREVIOUS_GTIDS: u8 = 35;
pub const TRANSACTION_CONTEXT: u8 = 36;
pub const VIEW_CHANGE: u8 = 37;
pub const XA_PREPARE: u8 = 38;
pub const TRANSACTION_PAYLOAD: u8 = 40;
pub const GTID_TAGGED: u8 = 42;
pub const ANNOTATE_ROWS: u8 = 160;
pub const BINLOG_CHECKPOINT: u8 = 161;
pub const MARIADB_GTID: u8 = 162;
pub const GTID_LIST: u8 = 163;
pub const START_ENCRYPTION: u8 = 164;
pub const QUERY_COMPRESSED: u8 = 165;

/// (code, name as mysqlbinlog/the server source spells it, role)
const TABLE: &[(u8, &str, Role)] = &[
    (1, "Start_v3", Role::Control),
    (2, "Query", Role::Query),
    (3, "Stop", Role::Control),
    (4, "Rotate", Role::Control),
    (5, "Intvar", Role::Inner),
    (6, "Load", Role::Inner),
    (7, "Slave", Role::Inner),
    (8, "Create_file", Role::Inner),
    (9, "Append_block", Role::Inner),
    (10, "Exec_load", Role::Inner),
    (11, "Delete_file", Role::Inner),
    (12, "New_load", Role::Inner),
    (13, "Rand", Role::Inner),
    (14, "User_var", Role::Inner),
    (15, "Format_desc", Role::Control),
    (16, "Xid", Role::End),
    (17, "Begin_load_query", Role::Inner),
    (18, "Execute_load_query", Role::Inner),
    (19, "Table_map", Role::Inner),
    (20, "Write_rows_pre_ga", Role::Inner),
    (21, "Update_rows_pre_ga", Role::Inner),
    (22, "Delete_rows_pre_ga", Role::Inner),
    (23, "Write_rows_v1", Role::Inner),
    (24, "Update_rows_v1", Role::Inner),
    (25, "Delete_rows_v1", Role::Inner),
    (26, "Incident", Role::Control),
    (27, "Heartbeat", Role::Stream),
    (28, "Ignorable", Role::Inner),
    (29, "Rows_query", Role::Inner),
    (30, "Write_rows", Role::Inner),
    (31, "Update_rows", Role::Inner),
    (32, "Delete_rows", Role::Inner),
    (33, "Gtid", Role::GtidStart),
    (34, "Anonymous_gtid", Role::GtidStart),
    (35, "Previous_gtids", Role::Control),
    (36, "Transaction_context", Role::Inner),
    (37, "View_change", Role::Inner),
    (38, "XA_prepare", Role::End),
    (39, "Partial_update_rows", Role::Inner),
    (40, "Transaction_payload", Role::Inner),
    (41, "Heartbeat_v2", Role::Stream),
    (42, "Gtid_tagged", Role::GtidStart),
    (160, "Annotate_rows", Role::Inner),
    (161, "Binlog_checkpoint", Role::Control),
    (162, "Gtid", Role::GtidStart),
    (163, "Gtid_list", Role::Control),
    (164, "Start_encryption", Role::Control),
    (165, "Query_compressed", Role::Query),
    (166, "Write_rows_compressed", Role::Inner),
    (167, "Update_rows_compressed", Role::Inner),
    (168, "Delete_rows_compressed", Role::Inner),
    (169, "Write_rows_compressed_v1", Role::Inner),
    (170, "Update_rows_compressed_v1", Role::Inner),
    (171, "Delete_rows_compressed_v1", Role::Inner),
];

fn lookup(code: u8) -> Option<&'static (u8, &'static str, Role)> {
    // codes 1..=42 sit at index code-1; 160.. at 42 + (code-160)
    let i = match code {
        1..=42 => code as usize - 1,
        160..=171 => 42 + (code as usize - 160),
        _ => return None,
    };
    TABLE.get(i).filter(|e| e.0 == code)
}

/// The name of a type code (`"Unknown"` for codes no server writes).
pub fn name(code: u8) -> &'static str {
    lookup(code).map(|e| e.1).unwrap_or("Unknown")
}

/// The grouping role of a type code.
pub fn role(code: u8) -> Role {
    lookup(code).map(|e| e.2).unwrap_or(Role::Unknown)
}

/// True for the row events of every generation (pre-GA, v1, v2, partial, MariaDB compressed).
pub fn is_rows(code: u8) -> bool {
    matches!(code, 20..=25 | 30..=32 | 39 | 166..=171)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_at_its_index() {
        for &(code, n, _) in TABLE {
            assert_eq!(name(code), n, "code {code}");
        }
        assert_eq!(name(0), "Unknown");
        assert_eq!(name(43), "Unknown");
        assert_eq!(name(172), "Unknown");
        assert_eq!(name(255), "Unknown");
        assert_eq!(role(162), Role::GtidStart);
        assert_eq!(role(16), Role::End);
        assert_eq!(role(165), Role::Query);
        assert!(is_rows(30) && is_rows(168) && !is_rows(19));
    }
}
