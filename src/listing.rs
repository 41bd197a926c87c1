//! Listing formats: `ls -l` lines for LIST and STAT, bare names for NLST, RFC 3659 facts for MLSD/MLST,
//! and the UTC timestamps they and MDTM/MFMT use.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::storage::{FileType, Metadata};

/// The MLST facts this server emits, as FEAT and `OPTS MLST` name them.
pub const MLST_FACTS: &[&str] =
    &["type", "size", "modify", "perm", "unix.mode", "unix.owner", "unix.group", "x.hdfs.replication"];

/// Characters that would let a stored name break a listing line or inject a reply are shown as `?`.
pub fn safe_name(name: &str) -> std::borrow::Cow<'_, str> {
    if name.contains(['\r', '\n', '\0']) {
        name.replace(['\r', '\n', '\0'], "?").into()
    } else {
        name.into()
    }
}

/// The fact only storage with block replication (HDFS) has.
const REPLICATION_FACT: &str = "x.hdfs.replication";

/// A fact's value as RFC 3659 allows it (no `;`, which ends the fact, nor a space, which ends the
/// facts): an owner or group name from storage (an HDFS user name can be anything its client said) is
/// shown with those characters, CR, LF and NUL as `?`.
fn fact_value(value: &str) -> std::borrow::Cow<'_, str> {
    const UNSAFE: [char; 5] = [';', ' ', '\r', '\n', '\0'];
    if value.contains(UNSAFE) {
        value.replace(UNSAFE, "?").into()
    } else {
        value.into()
    }
}

/// A set of MLST facts, as a bit per fact: those the storage has, or those of them the client asked for
/// with `OPTS MLST` (all it has by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FactSet(u32);

impl FactSet {
    /// The facts storage can give: `x.hdfs.replication` only where it has replication.
    pub fn offered(replication: bool) -> FactSet {
        let all = FactSet((1 << MLST_FACTS.len()) - 1);
        match replication {
            true => all,
            false => all.without(REPLICATION_FACT),
        }
    }

    fn without(self, fact: &str) -> FactSet {
        let bit = MLST_FACTS.iter().position(|f| *f == fact).map_or(0, |i| 1 << i);
        FactSet(self.0 & !bit)
    }

    pub fn contains(&self, fact: &str) -> bool {
        MLST_FACTS.iter().position(|f| f.eq_ignore_ascii_case(fact)).is_some_and(|i| self.0 & (1 << i) != 0)
    }

    /// Those of these facts a client's `type;size;` names; other names are ignored (RFC 3659 7.9).
    pub fn chosen(self, list: &str) -> FactSet {
        let bits = list
            .split(';')
            .filter_map(|name| MLST_FACTS.iter().position(|f| f.eq_ignore_ascii_case(name.trim())))
            .fold(0, |bits, i| bits | (1 << i));
        FactSet(self.0 & bits)
    }

    /// `type;size;`, for the OPTS MLST reply.
    pub fn describe(&self) -> String {
        MLST_FACTS.iter().filter(|f| self.contains(f)).map(|f| format!("{f};")).collect()
    }

    /// FEAT's MLST line (RFC 3659 7.8): every fact offered, the enabled ones marked, `type*;size;...`.
    pub fn feature_line(&self, enabled: &FactSet) -> String {
        let marked = |f: &&str| format!("{f}{};", if enabled.contains(f) { "*" } else { "" });
        MLST_FACTS.iter().filter(|f| self.contains(f)).map(marked).collect()
    }
}

/// An `ls -l` line (without CRLF), in the layout FileZilla, lftp, curl and ftplib parse.
pub fn ls_line(out: &mut String, name: &str, meta: &Metadata, now: SystemTime) {
    let kind = match meta.file_type {
        FileType::Dir => 'd',
        FileType::Symlink => 'l',
        FileType::File => '-',
    };
    let _ = write!(
        out,
        "{kind}{} {:>3} {:<8} {:<8} {:>12} {} {}",
        permission_string(meta.mode),
        meta.links.max(1),
        safe_name(&meta.owner),
        safe_name(&meta.group),
        meta.size,
        ls_date(meta.modified, now),
        safe_name(name)
    );
}

fn permission_string(mode: u32) -> String {
    let mut text = String::with_capacity(9);
    for (shift, special, set_char) in [(6, 0o4000, 's'), (3, 0o2000, 's'), (0, 0o1000, 't')] {
        let bits = (mode >> shift) & 7;
        text.push(if bits & 4 != 0 { 'r' } else { '-' });
        text.push(if bits & 2 != 0 { 'w' } else { '-' });
        text.push(match (bits & 1 != 0, mode & special != 0) {
            (true, true) => set_char,
            (false, true) => set_char.to_ascii_uppercase(),
            (true, false) => 'x',
            (false, false) => '-',
        });
    }
    text
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// `Mon DD HH:MM` within six months of now, `Mon DD  YYYY` otherwise, as `ls` does (in UTC).
fn ls_date(time: SystemTime, now: SystemTime) -> String {
    let (year, month, day, hour, minute, _) = civil(time);
    let six_months = Duration::from_secs(183 * 86400);
    let recent = match now.duration_since(time) {
        Ok(age) => age < six_months,
        Err(ahead) => ahead.duration() < Duration::from_secs(3600),
    };
    let month = MONTHS[month as usize - 1];
    if recent {
        format!("{month} {day:>2} {hour:02}:{minute:02}")
    } else {
        format!("{month} {day:>2}  {year}")
    }
}

/// RFC 3659 facts followed by a space and the name: `type=file;size=3;...; name`.
pub fn mlst_line(out: &mut String, name: &str, meta: &Metadata, writable: bool, facts: &FactSet) {
    let kind = match meta.file_type {
        FileType::Dir => "dir",
        FileType::Symlink => "OS.unix=symlink",
        FileType::File => "file",
    };
    let perm = match (meta.file_type, writable) {
        (FileType::Dir, true) => "flcdmpe",
        (FileType::Dir, false) => "el",
        (_, true) => "adfrw",
        (_, false) => "r",
    };
    let mode = format!("{:04o}", meta.mode);
    let replication = meta.replication.map(|r| r.to_string());
    let values = [
        Some(kind.to_string()),
        Some(meta.size.to_string()),
        Some(timestamp(meta.modified)),
        Some(perm.to_string()),
        Some(mode),
        Some(fact_value(&meta.owner).into_owned()),
        Some(fact_value(&meta.group).into_owned()),
        replication,
    ];
    for (fact, value) in MLST_FACTS.iter().zip(values) {
        if let Some(value) = value.filter(|_| facts.contains(fact)) {
            let _ = write!(out, "{fact}={value};");
        }
    }
    let _ = write!(out, " {}", safe_name(name));
}

/// The last time a `YYYYMMDDHHMMSS` can say: 9999-12-31 23:59:59 UTC.
const LAST_TIMESTAMP_SECS: u64 = 253_402_300_799;

/// `YYYYMMDDHHMMSS` in UTC, as MDTM and the `modify` fact give it. A later time (an HDFS client may set
/// any modification time) shows as the last one the format can carry, so it stays 14 digits.
pub fn timestamp(time: SystemTime) -> String {
    let (year, month, day, hour, minute, second) =
        civil(time.min(UNIX_EPOCH + Duration::from_secs(LAST_TIMESTAMP_SECS)));
    format!("{year:04}{month:02}{day:02}{hour:02}{minute:02}{second:02}")
}

/// `Sat Nov 21 05:34:58 2026`: ctime(3) layout in UTC, as xferlog uses it.
pub fn ctime(time: SystemTime) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    let days = time.duration_since(UNIX_EPOCH).map(|d| d.as_secs() / 86400).unwrap_or(0);
    let (year, month, day, hour, minute, second) = civil(time);
    let (weekday, month) = (WEEKDAYS[(days % 7) as usize], MONTHS[month as usize - 1]);
    format!("{weekday} {month} {day:>2} {hour:02}:{minute:02}:{second:02} {year}")
}

/// Parses `YYYYMMDDHHMMSS` (UTC; a `.sss` fraction is accepted and ignored), as MFMT sends it.
pub fn parse_timestamp(text: &str) -> Option<SystemTime> {
    let whole = text.split('.').next()?;
    if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |range: std::ops::Range<usize>| whole[range].parse::<i64>().ok();
    let (year, month, day) = (field(0..4)?, field(4..6)?, field(6..8)?);
    let (hour, minute, second) = (field(8..10)?, field(10..12)?, field(12..14)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
    u64::try_from(seconds).ok().map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

/// (year, month, day, hour, minute, second) in UTC. Times before 1970 show as 1970.
fn civil(time: SystemTime) -> (i64, u32, u32, u32, u32, u32) {
    let secs = time.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as i64;
    let (days, rest) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, (rest / 3600) as u32, (rest % 3600 / 60) as u32, (rest % 60) as u32)
}

fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(file_type: FileType, mode: u32, modified: SystemTime) -> Metadata {
        Metadata {
            file_type,
            size: 1234,
            modified,
            mode,
            owner: "alice".into(),
            group: "staff".into(),
            links: 1,
            replication: None,
        }
    }

    #[test]
    fn timestamps_round_trip() {
        let time = parse_timestamp("20200102030405").unwrap();
        assert_eq!(timestamp(time), "20200102030405");
        assert_eq!(timestamp(parse_timestamp("20240229235959.123").unwrap()), "20240229235959");
        assert!(parse_timestamp("2020010203040").is_none());
        assert!(parse_timestamp("20201302030405").is_none());
        assert_eq!(timestamp(UNIX_EPOCH), "19700101000000");
    }

    #[test]
    fn ls_lines_look_like_ls() {
        let now = parse_timestamp("20260601000000").unwrap();
        let mut line = String::new();
        ls_line(&mut line, "a.txt", &meta(FileType::File, 0o640, parse_timestamp("20260501101500").unwrap()), now);
        assert_eq!(line, "-rw-r-----   1 alice    staff            1234 May  1 10:15 a.txt");
        line.clear();
        ls_line(&mut line, "old", &meta(FileType::Dir, 0o755, parse_timestamp("20200102030405").unwrap()), now);
        assert_eq!(line, "drwxr-xr-x   1 alice    staff            1234 Jan  2  2020 old");
    }

    #[test]
    fn mlst_facts() {
        let mut line = String::new();
        mlst_line(
            &mut line,
            "x\ry",
            &meta(FileType::File, 0o644, parse_timestamp("20200102030405").unwrap()),
            false,
            &FactSet::offered(true),
        );
        assert_eq!(
            line,
            "type=file;size=1234;modify=20200102030405;perm=r;unix.mode=0644;unix.owner=alice;unix.group=staff; x?y"
        );
        assert_eq!(permission_string(0o4755), "rwsr-xr-x");
        assert_eq!(permission_string(0o1777), "rwxrwxrwt");
    }

    /// Found by fuzzing (fuzz target listing): an owner or group name (HDFS takes whatever user name its
    /// client gives) carrying CR/LF broke a listing line, and one carrying `;` or a space broke the facts.
    #[test]
    fn owner_and_group_names_cannot_break_a_listing_line() {
        let mut meta = meta(FileType::File, 0o644, parse_timestamp("20200102030405").unwrap());
        meta.owner = "evil\r\n226 done".into();
        meta.group = "a;b\0".into();
        let mut line = String::new();
        ls_line(&mut line, "f", &meta, parse_timestamp("20200202030405").unwrap());
        assert_eq!(line, "-rw-r--r--   1 evil??226 done a;b?             1234 Jan  2 03:04 f");
        line.clear();
        mlst_line(&mut line, "f", &meta, false, &FactSet::offered(false).chosen("unix.owner;unix.group;"));
        assert_eq!(line, "unix.owner=evil??226?done;unix.group=a?b?; f");
    }

    /// Found by fuzzing (fuzz target listing): a modification time after the year 9999 gave a `modify`
    /// fact (and an MDTM reply) of more than 14 digits, which no client parses.
    #[test]
    fn times_after_the_year_9999_stay_14_digits() {
        assert_eq!(timestamp(UNIX_EPOCH + Duration::from_secs(LAST_TIMESTAMP_SECS)), "99991231235959");
        assert_eq!(timestamp(UNIX_EPOCH + Duration::from_secs(2_173_866_780_700_402)), "99991231235959");
        assert_eq!(timestamp(UNIX_EPOCH + Duration::from_secs(i64::MAX as u64)), "99991231235959");
    }

    #[test]
    fn fact_sets() {
        let set = FactSet::offered(true).chosen("Type;SIZE;bogus;x.hdfs.replication");
        assert!(set.contains("type") && set.contains("size") && !set.contains("modify"));
        assert_eq!(set.describe(), "type;size;x.hdfs.replication;");
        let offered = FactSet::offered(true);
        assert!(offered.feature_line(&offered).starts_with("type*;size*;modify*;"));
        assert!(offered.feature_line(&set).starts_with("type*;size*;modify;perm;"));
        // Storage without replication neither offers the fact nor lets a client choose it.
        let local = FactSet::offered(false);
        assert!(!local.feature_line(&local).contains("x.hdfs.replication"));
        assert_eq!(local.chosen("size;x.hdfs.replication;").describe(), "size;");
    }
}
